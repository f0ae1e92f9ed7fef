package remote

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"go.uber.org/zap"
)

// Secret holds a credential. It prints as [redacted] in every format, so it is safe to log by accident;
// only the code that builds an Authorization header calls Reveal.
type Secret string

func (Secret) String() string   { return "[redacted]" }
func (Secret) GoString() string { return "[redacted]" }

// MarshalText keeps secrets out of JSON and YAML output too.
func (Secret) MarshalText() ([]byte, error) { return []byte("[redacted]"), nil }

// Reveal returns the credential itself.
func (s Secret) Reveal() string { return string(s) }

// OpenOptions carries what a provider needs to connect. Zero values mean "use the stored login".
type OpenOptions struct {
	Endpoint     string // API base URL, e.g. an emulator's
	AccessToken  Secret
	RefreshToken Secret
	CAFile       string // extra trusted CA certificates (PEM)
	StateDir     string // where logins (token files) live
	Account      string
	// OnSkip, when set, is told about remote entries the provider leaves out that the user may care about
	// (names tandem cannot hold), with the pair path (escaped) and the reason; it may be called many times.
	OnSkip func(p, reason string)
}

// Opener opens a provider's Remote rooted at root (the part of the spec after "scheme:").
type Opener func(ctx context.Context, lg *zap.Logger, root string, o OpenOptions) (Remote, error)

// Registry maps spec schemes ("dir", "pcloud", ...) to openers. It is a value built in cmd/tandem, not a global.
type Registry struct{ m map[string]Opener }

// Add registers scheme.
func (r *Registry) Add(scheme string, o Opener) {
	if r.m == nil {
		r.m = map[string]Opener{}
	}
	r.m[scheme] = o
}

// Schemes lists the registered schemes, sorted.
func (r *Registry) Schemes() []string {
	var s []string
	for k := range r.m {
		s = append(s, k)
	}
	sort.Strings(s)
	return s
}

// SplitSpec splits "scheme:/path" into its parts. A spec without a known scheme is an error that lists them.
func (r *Registry) SplitSpec(spec string) (scheme, root string, err error) {
	i := strings.IndexByte(spec, ':')
	if i <= 0 {
		return "", "", fmt.Errorf("remote %q: want scheme:path, one of %s", spec, strings.Join(r.Schemes(), ", "))
	}
	scheme, root = spec[:i], spec[i+1:]
	if _, ok := r.m[scheme]; !ok {
		return "", "", fmt.Errorf("remote %q: unknown scheme %q, want one of %s", spec, scheme, strings.Join(r.Schemes(), ", "))
	}
	return scheme, root, nil
}

// Open opens spec.
func (r *Registry) Open(ctx context.Context, lg *zap.Logger, spec string, o OpenOptions) (Remote, error) {
	scheme, root, err := r.SplitSpec(spec)
	if err != nil {
		return nil, err
	}
	return r.m[scheme](ctx, lg, root, o)
}
