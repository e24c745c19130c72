//go:build windows

package certfile

import (
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/windows"
)

// CertGetCertificateContextProperty is not in x/sys/windows.
var procCertGetCertificateContextProperty = windows.NewLazySystemDLL("crypt32.dll").NewProc("CertGetCertificateContextProperty")

const (
	certKeyProvInfoPropID  = 2  // CERT_KEY_PROV_INFO_PROP_ID
	certFriendlyNamePropID = 11 // CERT_FRIENDLY_NAME_PROP_ID
)

// cryptKeyProvInfo is CRYPT_KEY_PROV_INFO (wincrypt.h).
type cryptKeyProvInfo struct {
	ContainerName *uint16
	ProvName      *uint16
	ProvType      uint32
	Flags         uint32
	ProvParam     uint32
	ProvParams    uintptr
	KeySpec       uint32
}

// crypt32 reads the system stores of the current user, or of the machine.
type crypt32 struct{ machine bool }

func openCAPI(machine bool) (capiSource, error) {
	if err := procCertGetCertificateContextProperty.Find(); err != nil {
		return nil, fmt.Errorf("crypt32: %w", err)
	}
	return crypt32{machine: machine}, nil
}

func (c crypt32) certificates(name string) ([]capiCert, error) {
	location := uint32(windows.CERT_SYSTEM_STORE_CURRENT_USER)
	where := "CurrentUser\\" + name
	if c.machine {
		location, where = windows.CERT_SYSTEM_STORE_LOCAL_MACHINE, "LocalMachine\\"+name
	}
	namePtr, err := windows.UTF16PtrFromString(name)
	if err != nil {
		return nil, err
	}
	h, err := windows.CertOpenStore(windows.CERT_STORE_PROV_SYSTEM, 0, 0,
		location|windows.CERT_STORE_READONLY_FLAG|windows.CERT_STORE_OPEN_EXISTING_FLAG, uintptr(unsafe.Pointer(namePtr)))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", where, err)
	}
	defer func() { _ = windows.CertCloseStore(h, 0) }()
	var out []capiCert
	var ctx *windows.CertContext
	for {
		ctx, err = windows.CertEnumCertificatesInStore(h, ctx)
		if ctx == nil {
			// The end of the store is CRYPT_E_NOT_FOUND.
			if err != nil && !errors.Is(err, windows.Errno(windows.CRYPT_E_NOT_FOUND)) {
				return nil, fmt.Errorf("read %s: %w", where, err)
			}
			return out, nil
		}
		c := capiCert{DER: append([]byte(nil), unsafe.Slice(ctx.EncodedCert, ctx.Length)...)}
		if b := property(ctx, certFriendlyNamePropID); len(b) >= 2 {
			c.FriendlyName = windows.UTF16PtrToString((*uint16)(unsafe.Pointer(&b[0])))
		}
		if b := property(ctx, certKeyProvInfoPropID); len(b) >= int(unsafe.Sizeof(cryptKeyProvInfo{})) {
			p := (*cryptKeyProvInfo)(unsafe.Pointer(&b[0]))
			c.ProvInfo = &capiProvInfo{Container: windows.UTF16PtrToString(p.ContainerName),
				Provider: windows.UTF16PtrToString(p.ProvName), ProvType: p.ProvType, KeySpec: p.KeySpec}
		}
		out = append(out, c)
	}
}

// property is a certificate context property's bytes, nil when it has
// none. The buffer is 8-byte aligned: CRYPT_KEY_PROV_INFO holds pointers,
// into the same buffer.
func property(ctx *windows.CertContext, id uint32) []byte {
	var size uint32
	r, _, _ := procCertGetCertificateContextProperty.Call(uintptr(unsafe.Pointer(ctx)), uintptr(id), 0, uintptr(unsafe.Pointer(&size)))
	if r == 0 || size == 0 {
		return nil
	}
	words := make([]uint64, (size+7)/8)
	r, _, _ = procCertGetCertificateContextProperty.Call(uintptr(unsafe.Pointer(ctx)), uintptr(id),
		uintptr(unsafe.Pointer(&words[0])), uintptr(unsafe.Pointer(&size)))
	if r == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&words[0])), size)
}
