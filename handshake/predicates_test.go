package handshake

import "testing"

// TestNameServerAlert: the alert the client read replaces the parser's
// encrypted ones, once; one the parser read itself is left as it is.
func TestNameServerAlert(t *testing.T) {
	const d = AlertDescription(116)
	named := Alert{From: FromServer, Level: AlertFatal, Description: d}
	client := Alert{From: FromClient, Encrypted: true}
	got, ok := nameServerAlert([]Alert{client, {From: FromServer, Encrypted: true}}, d)
	if !ok || len(got) != 2 || got[0] != client || got[1] != named {
		t.Errorf("encrypted server alert: %+v %v", got, ok)
	}
	read := []Alert{named}
	if got, ok := nameServerAlert(read, d); ok || len(got) != 1 {
		t.Errorf("alert already read: %+v %v, want unchanged", got, ok)
	}
}
