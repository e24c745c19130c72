package main

import (
	"bufio"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/bcrypt"
)

// newPasswdCmd makes the access.users entry for a proxy user, so that no
// password is ever written into a config file.
func newPasswdCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "passwd NAME",
		Short: "Print an access.users entry (NAME:BCRYPT_HASH) for a password read from stdin",
		Long: `Reads one line from standard input, the password, and prints NAME:HASH with a bcrypt
hash of it, to put in access.users (or CERTLENS_ACCESS_USERS). Clients then
authenticate to the proxy with Basic credentials, e.g. curl -x http://NAME:PASSWORD@host:8080.`,
		Example: `  read -rs PW && printf '%s\n' "$PW" | certlens passwd alice
  certlens passwd alice < password.txt`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError{fmt.Errorf("passwd takes one user NAME, got %d arguments: e.g. certlens passwd alice < password.txt", len(args))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if name == "" || strings.ContainsAny(name, ":, \t") {
				return usageError{fmt.Errorf("passwd: %q cannot be a user name (no colon, comma or space)", name)}
			}
			line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
			pass := strings.TrimRight(line, "\r\n")
			if pass == "" {
				if err != nil {
					return usageError{fmt.Errorf("passwd: no password on standard input (%v)", err)}
				}
				return usageError{fmt.Errorf("passwd: the password on standard input is empty")}
			}
			hash, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.DefaultCost)
			if err != nil {
				return fmt.Errorf("passwd: %w", err)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s:%s\n", name, hash)
			return err
		},
	}
}
