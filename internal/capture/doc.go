// Package capture diagnoses TLS client-certificate handshakes offline, from
// a packet capture: it reads pcap and pcapng files (gzip-compressed or not)
// with gopacket's pure-Go readers, rebuilds each TCP connection with
// gopacket's reassembly, and feeds both directions of every connection, in
// capture order, to one handshake.Parser, so that the rules and events are
// exactly those of the proxy, for every TLS connection in the file.
//
// Connections are numbered as Wireshark numbers them (tcp.stream) and the
// messages the rules read are located by frame number, so that every event
// says where to look in Wireshark. TLS is recognised by content, on any
// port. The file is streamed: connections are flushed when they end or
// fall idle, and what is buffered per connection is capped, so a
// multi-gigabyte capture is read in bounded memory.
package capture
