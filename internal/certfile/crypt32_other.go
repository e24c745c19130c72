//go:build !windows

package certfile

import "errors"

func openCAPI(bool) (capiSource, error) {
	return nil, errors.New("the Windows certificate store is read through crypt32, on Windows only: run certlens.exe certs --store windows on the Windows machine")
}
