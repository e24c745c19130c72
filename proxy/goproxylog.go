package proxy

import (
	"fmt"
	"strings"

	"go.uber.org/zap"
)

// goproxyLogger turns goproxy's "[%03d] WARN: ..." Printf lines into zap
// entries: WARN at warn level, the rest at debug, the session as a field.
type goproxyLogger struct{ log *zap.Logger }

func (g goproxyLogger) Printf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	session := ""
	if strings.HasPrefix(msg, "[") {
		if i := strings.IndexByte(msg, ']'); i > 0 {
			session, msg = msg[1:i], strings.TrimSpace(msg[i+1:])
		}
	}
	switch {
	case strings.HasPrefix(msg, "WARN: "):
		g.log.Warn(strings.TrimPrefix(msg, "WARN: "), zap.String("session", session))
	default:
		g.log.Debug(strings.TrimPrefix(msg, "INFO: "), zap.String("session", session))
	}
}
