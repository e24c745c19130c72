package config

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestAccess(t *testing.T) {
	isolate(t)
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("CERTLENS_LISTEN", "0.0.0.0:8080")
	t.Setenv("CERTLENS_ADMIN_LISTEN", "")
	t.Setenv("CERTLENS_ACCESS_USERS", "alice:"+string(hash))
	t.Setenv("CERTLENS_ACCESS_ALLOW_CLIENTS", "10.0.0.0/8, 192.168.1.20, ::1")
	t.Setenv("CERTLENS_ACCESS_DENY_HOSTS", "*.Internal.example")
	c := mustLoad(t)
	want := Access{
		Users:        []User{{Name: "alice", Hash: string(hash)}},
		AllowClients: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.20/32"), netip.MustParsePrefix("::1/128")},
		DenyHosts:    []string{"*.internal.example"},
	}
	if !reflect.DeepEqual(c.Access, want) {
		t.Errorf("access %+v, want %+v", c.Access, want)
	}
}

func TestAccessErrors(t *testing.T) {
	cases := []struct {
		env  map[string]string
		want string
	}{
		// A password pasted instead of a hash is not echoed back.
		{map[string]string{"CERTLENS_ACCESS_USERS": "alice:hunter2"}, `config: access.users: user "alice": the password is not a bcrypt hash`},
		{map[string]string{"CERTLENS_ACCESS_USERS": "hunter2"}, `config: access.users: "hun…" is not NAME:BCRYPT_HASH (make one with: certlens passwd NAME) (from CERTLENS_ACCESS_USERS)`},
		{map[string]string{"CERTLENS_ACCESS_ALLOW_CLIENTS": "10.0.0.0/33"}, `config: access.allow_clients: "10.0.0.0/33" is not an address or CIDR`},
		{map[string]string{"CERTLENS_ACCESS_ALLOW_HOSTS": "[a"}, `config: access.allow_hosts: "[a" is not a host pattern`},
		{map[string]string{"CERTLENS_LIMITS_MAX_CONNS": "0"}, `config: limits.max_conns: must be positive, got 0 (from CERTLENS_LIMITS_MAX_CONNS)`},
	}
	for _, tc := range cases {
		t.Run(tc.want, func(t *testing.T) {
			isolate(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			_, err := load(t)
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "hunter2") {
				t.Errorf("err %v, want %q and no password", err, tc.want)
			}
		})
	}
}
