package config

import (
	"reflect"
	"strings"
	"testing"
)

func TestSidecarRoutes(t *testing.T) {
	isolate(t)
	t.Setenv("CERTLENS_MODE", "sidecar")
	t.Setenv("CERTLENS_UPSTREAM", "web:443")
	t.Setenv("CERTLENS_SIDECAR_ROUTES", "app.example.com=app:8443, *.api.example.com=api:443")
	c := mustLoad(t)
	want := []Route{{"app.example.com", "app:8443"}, {"*.api.example.com", "api:443"}}
	if !reflect.DeepEqual(c.Sidecar.Routes, want) || c.Sidecar.ProxyProtocolVersion != 2 {
		t.Errorf("sidecar %+v", c.Sidecar)
	}
}

func TestSidecarErrors(t *testing.T) {
	cases := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"CERTLENS_SIDECAR_ROUTES": "app.example.com"}, `config: sidecar.routes: "app.example.com" is not SNI_PATTERN=HOST:PORT (from CERTLENS_SIDECAR_ROUTES)`},
		{map[string]string{"CERTLENS_SIDECAR_ROUTES": "a.example=web"}, `config: sidecar.routes: "a.example=web":`},
		{map[string]string{"CERTLENS_SIDECAR_ROUTES": "[=web:443"}, `bad pattern`},
		{map[string]string{"CERTLENS_SIDECAR_PROXY_PROTOCOL_VERSION": "3"}, `config: sidecar.proxy_protocol_version: 3 is not a PROXY protocol version; use 1 or 2`},
		{map[string]string{"CERTLENS_MODE": "observe", "CERTLENS_SIDECAR_ROUTES": "a=web:443"}, `config: sidecar.routes: only used in sidecar mode (mode is observe)`},
	}
	for _, tc := range cases {
		t.Run(tc.want, func(t *testing.T) {
			isolate(t)
			t.Setenv("CERTLENS_MODE", "sidecar")
			t.Setenv("CERTLENS_UPSTREAM", "web:443")
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			_, err := load(t)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want %q", err, tc.want)
			}
		})
	}
}
