package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
)

// goRelay is the floor for any Go CONNECT proxy on this machine: accept,
// read the CONNECT, dial, answer 200, and let the kernel splice both ways.
// No parsing, no logging, no limits. What certlens costs above it is
// certlens's; what it costs above tinyproxy is Go's and the kernel's.
func (b *bench) goRelay() (*peer, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	addr := freeAddr()
	return startProc("go-relay", addr, exec.Command(self, "-relay", addr))
}

// serveRelay runs goRelay's proxy (certlens-bench -relay ADDR) until
// its listener fails.
func serveRelay(addr string) error {
	ln, err := (&net.ListenConfig{KeepAlive: -1}).Listen(context.Background(), "tcp", addr)
	if err != nil {
		return err
	}
	d := net.Dialer{KeepAlive: -1}
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			client := c.(*net.TCPConn)
			defer client.Close()
			br := bufio.NewReader(client)
			req, err := http.ReadRequest(br)
			if err != nil || req.Method != http.MethodConnect {
				return
			}
			up, err := d.Dial("tcp", req.Host)
			if err != nil {
				_, _ = io.WriteString(client, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
				return
			}
			server := up.(*net.TCPConn)
			defer server.Close()
			if _, err := io.WriteString(client, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
				return
			}
			if n := br.Buffered(); n > 0 {
				early, _ := br.Peek(n)
				if _, err := server.Write(early); err != nil {
					return
				}
			}
			done := make(chan struct{})
			go func() {
				_, _ = server.ReadFrom(client)
				_ = server.CloseWrite()
				close(done)
			}()
			_, _ = client.ReadFrom(server)
			_ = client.CloseWrite()
			<-done
		}()
	}
}
