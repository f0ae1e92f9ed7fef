package daemon

import (
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"gopkg.in/natefinch/lumberjack.v2"
)

// LogOptions choose the daemon's log.
type LogOptions struct {
	// File: JSON lines to this file, rotated (10 MiB x 5, 30 days, compressed). "" logs to Console instead.
	File    string
	Console io.Writer // console format (for a terminal or a pipe)
	Debug   bool
}

// NewLogger builds the daemon's logger: zap's console encoder on a terminal, JSON to a rotated file as a
// service. Either way it goes through Redact, so a token that slips into a field or an error text (Go's
// *url.Error prints whole URLs, query tokens included) is replaced by [redacted]. close flushes and closes.
func NewLogger(o LogOptions) (*zap.Logger, func(), error) {
	lvl := zapcore.InfoLevel
	if o.Debug {
		lvl = zapcore.DebugLevel
	}
	var core zapcore.Core
	closeFile := func() {}
	if o.File != "" {
		if err := os.MkdirAll(filepath.Dir(o.File), 0o700); err != nil {
			return nil, nil, err
		}
		rot := &lumberjack.Logger{Filename: o.File, MaxSize: 10, MaxBackups: 5, MaxAge: 30, Compress: true}
		enc := zap.NewProductionEncoderConfig()
		enc.EncodeTime = zapcore.ISO8601TimeEncoder
		core = zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.AddSync(rot), lvl)
		closeFile = func() { rot.Close() }
	} else {
		w := o.Console
		if w == nil {
			w = os.Stderr
		}
		enc := zap.NewDevelopmentEncoderConfig()
		enc.EncodeTime = zapcore.TimeEncoderOfLayout("2006-01-02 15:04:05.000")
		core = zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.Lock(zapcore.AddSync(w)), lvl)
	}
	l := zap.New(Redact(core))
	return l, func() { _ = l.Sync(); closeFile() }, nil
}

// secretKeys are field keys whose values are never logged.
var secretKeys = []string{"token", "secret", "password", "passwd", "authorization", "auth_code", "cookie", "apikey", "api_key"}

// secretInText matches credentials inside text: query parameters and Authorization headers.
var secretInText = regexp.MustCompile(`(?i)((?:access_token|refresh_token|auth|token|client_secret|password|code|apikey|api_key)=)[^&\s"']+|(bearer\s+)[A-Za-z0-9._~+/=-]+`)

// RedactText replaces credentials found in s.
func RedactText(s string) string {
	if !strings.ContainsAny(s, "=") && !strings.Contains(strings.ToLower(s), "bearer") {
		return s
	}
	return secretInText.ReplaceAllString(s, "${1}${2}[redacted]")
}

// Redact wraps a core so that fields named like credentials are dropped to [redacted] and credentials in
// messages, string fields and error texts are masked.
func Redact(c zapcore.Core) zapcore.Core { return &redactCore{c} }

type redactCore struct{ zapcore.Core }

func (r *redactCore) With(fs []zapcore.Field) zapcore.Core {
	return &redactCore{r.Core.With(redactFields(fs))}
}

func (r *redactCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if r.Enabled(e.Level) {
		return ce.AddCore(e, r)
	}
	return ce
}

func (r *redactCore) Write(e zapcore.Entry, fs []zapcore.Field) error {
	e.Message = RedactText(e.Message)
	return r.Core.Write(e, redactFields(fs))
}

func redactFields(fs []zapcore.Field) []zapcore.Field {
	out := make([]zapcore.Field, len(fs))
	for i, f := range fs {
		k := strings.ToLower(f.Key)
		secret := false
		for _, s := range secretKeys {
			secret = secret || strings.Contains(k, s)
		}
		switch {
		case secret:
			out[i] = zap.String(f.Key, "[redacted]")
		case f.Type == zapcore.StringType:
			out[i] = zap.String(f.Key, RedactText(f.String))
		case f.Type == zapcore.ErrorType:
			if err, ok := f.Interface.(error); ok && err != nil {
				out[i] = zap.String(f.Key, RedactText(err.Error()))
			} else {
				out[i] = f
			}
		case f.Type == zapcore.StringerType:
			out[i] = zap.String(f.Key, RedactText(stringOf(f.Interface)))
		default:
			out[i] = f
		}
	}
	return out
}

func stringOf(v any) (s string) {
	defer func() {
		if recover() != nil {
			s = "<unprintable>"
		}
	}()
	if st, ok := v.(interface{ String() string }); ok {
		return st.String()
	}
	return ""
}
