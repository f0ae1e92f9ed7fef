package remote

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
)

// NewDigest returns a hash.Hash for one of the algorithms providers use: "sha256", "sha1" or "md5".
func NewDigest(algo string) (hash.Hash, error) {
	switch algo {
	case "sha256":
		return sha256.New(), nil
	case "sha1":
		return sha1.New(), nil
	case "md5":
		return md5.New(), nil
	}
	return nil, fmt.Errorf("unknown digest algorithm %q", algo)
}

// Sum finishes h as a Hash of algo.
func Sum(algo string, h hash.Hash) Hash { return Hash{Algo: algo, Hex: hex.EncodeToString(h.Sum(nil))} }

// HashReader digests everything r yields.
func HashReader(algo string, r io.Reader) (Hash, int64, error) {
	h, err := NewDigest(algo)
	if err != nil {
		return Hash{}, 0, err
	}
	n, err := io.Copy(h, r)
	if err != nil {
		return Hash{}, n, err
	}
	return Sum(algo, h), n, nil
}

// Verifier passes a body through while digesting it. At EOF it compares the digest (and the byte count when
// size >= 0) with what was promised and returns an error wrapping ErrCorrupt instead of io.EOF on a mismatch,
// so a writer that stops at the first error never commits a corrupt body.
type Verifier struct {
	r     io.Reader
	h     hash.Hash
	want  Hash
	size  int64
	n     int64
	algo  string
	final error
}

// NewVerifier wraps r. A zero want only counts bytes (and digests with algo when algo is set).
func NewVerifier(r io.Reader, want Hash, size int64, algo string) *Verifier {
	v := &Verifier{r: r, want: want, size: size, algo: algo}
	if !want.IsZero() {
		v.algo = want.Algo
	}
	if v.algo != "" {
		v.h, _ = NewDigest(v.algo)
	}
	return v
}

func (v *Verifier) Read(p []byte) (int, error) {
	if v.final != nil {
		return 0, v.final
	}
	n, err := v.r.Read(p)
	v.n += int64(n)
	if v.h != nil {
		v.h.Write(p[:n])
	}
	if err == io.EOF {
		switch got := v.Sum(); {
		case v.size >= 0 && v.n != v.size:
			err = fmt.Errorf("%w: got %d bytes, want %d", ErrCorrupt, v.n, v.size)
		case !v.want.IsZero() && got != v.want:
			err = fmt.Errorf("%w: got %s, want %s", ErrCorrupt, got, v.want)
		}
		v.final = err
	}
	return n, err
}

// Sum is the digest of what was read so far (zero without an algorithm).
func (v *Verifier) Sum() Hash {
	if v.h == nil {
		return Hash{}
	}
	return Sum(v.algo, v.h)
}

// N is the number of bytes read so far.
func (v *Verifier) N() int64 { return v.n }

// Algo is the digest Sum computes ("" none).
func (v *Verifier) Algo() string {
	if v.h == nil {
		return ""
	}
	return v.algo
}
