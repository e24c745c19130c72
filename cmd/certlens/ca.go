package main

import (
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/certlens/certlens/config"
	"github.com/certlens/certlens/internal/ca"
)

func newCACmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ca",
		Short: "Create or export intercept mode's root CA",
		Long: `Intercept mode stands in for the servers it proxies with certificates
signed by certlens's own root CA. The browser (or Windows' Trusted Root
store) must trust that root: create it with "certlens ca init", export it
with "certlens ca export", and import it (see the README, "Intercept mode").

The CA lives in intercept.ca_dir (default $XDG_DATA_HOME/certlens, or
~/.local/share/certlens; on Windows and macOS the user's application data
directory): ca.crt and ca.key, the key readable by its owner only. Anyone
who reads the key can impersonate any site to browsers that trust the root.`,
		Args: cobra.NoArgs,
	}
	var dir string
	cmd.PersistentFlags().StringVar(&dir, "dir", "", "directory of the CA [intercept.ca_dir, CERTLENS_INTERCEPT_CA_DIR]")
	caDir := func(c *cobra.Command) (string, error) {
		if c.Flags().Changed("dir") {
			return dir, nil
		}
		cfg, err := config.Load(nil)
		if err != nil {
			return "", err
		}
		printWarnings(c.ErrOrStderr(), cfg)
		return interceptCADir(cfg)
	}

	var force bool
	initCmd := &cobra.Command{
		Use:   "init",
		Short: "Create the root CA (ECDSA P-256, ten years)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			d, err := caDir(c)
			if err != nil {
				return err
			}
			root, err := ca.Create(d, force)
			if err != nil {
				// The directory named cannot hold a new CA, or already
				// holds one: the command as given cannot be done.
				return usageError{fmt.Errorf("ca init: %w", err)}
			}
			fmt.Fprintf(c.OutOrStdout(), "created %s\nsubject: %s\nsha256:  %s\nnext: certlens ca export > certlens-ca.crt, and import it as a trusted root\n",
				root.CertPath(), root.Cert.Subject, root.Fingerprint())
			return nil
		},
	}
	initCmd.Flags().BoolVar(&force, "force", false, "replace an existing CA (browsers must then import the new one)")

	var der bool
	exportCmd := &cobra.Command{
		Use:   "export",
		Short: "Print the root CA certificate (PEM, or DER with --der) to import it",
		Example: `  certlens ca export > certlens-ca.crt
  certlens ca export --der > certlens-ca.cer      (Windows: certutil -addstore Root certlens-ca.cer)`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			d, err := caDir(c)
			if err != nil {
				return err
			}
			root, err := ca.Load(d)
			if errors.Is(err, ca.ErrNotFound) {
				return usageError{fmt.Errorf("ca export: %w; create it with certlens ca init, or name its directory with --dir", err)}
			}
			if err != nil {
				return usageError{fmt.Errorf("ca export: %w", err)}
			}
			if der {
				_, err = c.OutOrStdout().Write(root.Cert.Raw)
				return err
			}
			_, err = c.OutOrStdout().Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Cert.Raw}))
			return err
		},
	}
	exportCmd.Flags().BoolVar(&der, "der", false, "write DER (a .cer file for Windows) instead of PEM")
	cmd.AddCommand(initCmd, exportCmd)
	return cmd
}

// interceptCADir is intercept.ca_dir, or the default data dir.
func interceptCADir(cfg *config.Config) (string, error) {
	if cfg.Intercept.CADir != "" {
		return cfg.Intercept.CADir, nil
	}
	return ca.DefaultDir()
}
