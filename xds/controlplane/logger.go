package controlplane

import (
	"context"
	"fmt"
	"log/slog"
)

// quietLogger adapts go-control-plane's logger to slog. The cache logs every
// watch at info level, so everything below warning goes to debug.
type quietLogger struct{ l *slog.Logger }

func (q quietLogger) logf(level slog.Level, format string, args ...any) {
	if !q.l.Enabled(context.Background(), level) {
		return
	}
	q.l.Log(context.Background(), level, fmt.Sprintf(format, args...), "component", "go-control-plane")
}

func (q quietLogger) Debugf(format string, args ...any) { q.logf(slog.LevelDebug, format, args...) }
func (q quietLogger) Infof(format string, args ...any)  { q.logf(slog.LevelDebug, format, args...) }
func (q quietLogger) Warnf(format string, args ...any)  { q.logf(slog.LevelWarn, format, args...) }
func (q quietLogger) Errorf(format string, args ...any) { q.logf(slog.LevelError, format, args...) }
