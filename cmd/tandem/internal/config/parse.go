package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Parse reads a configuration from r; name is how problems refer to the file (e.g. "config.yaml" or its path).
// Unknown keys, wrong types and malformed values are errors, all reported at once (errors.Join of *Problem);
// an empty document is an empty configuration. Call Validate on the result for the checks across fields.
// Past a YAML syntax error the Config is nil; past other problems it holds what parsed, so that Validate can
// report its problems in the same run.
func Parse(r io.Reader, name string) (*Config, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	c := &Config{File: name, lines: map[string]int{}}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, syntaxProblem(name, err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return c, nil
	}
	p := &parser{c: c}
	p.top(doc.Content[0])
	return c, errors.Join(p.errs...)
}

// Load parses the file at path. A missing file is an empty configuration when missingOK.
func Load(path string, missingOK bool) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		if missingOK && errors.Is(err, os.ErrNotExist) {
			return &Config{File: path, lines: map[string]int{}}, nil
		}
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	return Parse(f, path)
}

// syntaxProblem turns yaml's "yaml: line 3: ..." into file:3: ....
func syntaxProblem(name string, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if i := strings.IndexByte(rest, ':'); i > 0 {
			if n, err := strconv.Atoi(rest[:i]); err == nil {
				line, msg = n, strings.TrimSpace(rest[i+1:])
			}
		}
	}
	return &Problem{File: name, Line: line, Msg: "YAML syntax: " + msg}
}

type parser struct {
	c    *Config
	errs []error
}

func (p *parser) fail(n *yaml.Node, field, format string, a ...any) {
	p.errs = append(p.errs, &Problem{File: p.c.File, Line: n.Line, Field: field, Msg: fmt.Sprintf(format, a...)})
}

// fields walks a mapping node, calling set for each key; unknown keys are reported with the known ones.
func (p *parser) fields(n *yaml.Node, prefix string, known []string, set func(key string, v *yaml.Node, field string)) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind != yaml.MappingNode {
		if n.Tag == "!!null" {
			return
		}
		p.fail(n, strings.TrimSuffix(prefix, "."), "want a mapping of keys (%s), got %s", strings.Join(known, ", "), kind(n))
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		field := prefix + k.Value
		p.c.lines[field] = k.Line
		if seen[k.Value] {
			p.fail(k, field, "given twice")
			continue
		}
		seen[k.Value] = true
		ok := false
		for _, kn := range known {
			ok = ok || kn == k.Value
		}
		if !ok {
			p.fail(k, field, "unknown key; known keys here: %s", strings.Join(known, ", "))
			continue
		}
		set(k.Value, v, field)
	}
}

func kind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	}
	return fmt.Sprintf("%q", n.Value)
}

func (p *parser) top(n *yaml.Node) {
	p.c.lines[""] = n.Line
	p.fields(n, "", []string{"state_dir", "log_file", "metrics_addr", "metrics_public", "full_scan_interval", "remote_relist_interval", "pairs", "verizon", "token_store"},
		func(k string, v *yaml.Node, f string) {
			switch k {
			case "state_dir":
				p.c.StateDir = p.str(v, f)
			case "log_file":
				p.c.LogFile = p.str(v, f)
			case "metrics_addr":
				p.c.MetricsAddr = p.str(v, f)
			case "metrics_public":
				p.c.MetricsPublic = p.boolean(v, f)
			case "token_store":
				p.c.TokenStore = p.str(v, f)
			case "full_scan_interval":
				p.c.FullScanInterval = p.duration(v, f)
			case "remote_relist_interval":
				p.c.RemoteRelistInterval = p.relistInterval(v, f)
			case "pairs":
				p.pairs(v, f)
			case "verizon":
				p.fields(v, f+".", []string{"client_id", "client_secret", "redirect_url"}, func(k string, v *yaml.Node, f string) {
					switch k {
					case "client_id":
						p.c.Verizon.ClientID = p.str(v, f)
					case "client_secret":
						p.c.Verizon.ClientSecret = p.str(v, f)
					case "redirect_url":
						p.c.Verizon.RedirectURL = p.str(v, f)
					}
				})
			}
		})
}

func (p *parser) pairs(n *yaml.Node, field string) {
	if n.Tag == "!!null" {
		return
	}
	if n.Kind != yaml.SequenceNode {
		p.fail(n, field, "want a list of pairs, got %s", kind(n))
		return
	}
	for i, pn := range n.Content {
		f := fmt.Sprintf("%s[%d]", field, i)
		p.c.lines[f] = pn.Line
		var pr Pair
		p.fields(pn, f+".", []string{"name", "local", "remote", "account", "endpoint", "ca_file", "ignore",
			"conflict", "poll_interval", "bandwidth_limit", "max_delete", "delete_window"}, func(k string, v *yaml.Node, f string) {
			switch k {
			case "name":
				pr.Name = p.str(v, f)
			case "local":
				pr.Local = p.str(v, f)
			case "remote":
				pr.Remote = p.str(v, f)
			case "account":
				pr.Account = p.str(v, f)
			case "endpoint":
				pr.Endpoint = strings.TrimSpace(p.str(v, f))
			case "ca_file":
				pr.CAFile = p.str(v, f)
			case "ignore":
				pr.Ignore = p.strs(v, f)
			case "conflict":
				pr.Conflict = p.str(v, f)
			case "poll_interval":
				pr.PollInterval = p.duration(v, f)
			case "bandwidth_limit":
				s := p.str(v, f)
				bw, err := ParseBandwidth(s)
				if err != nil {
					p.fail(v, f, "%v", err)
				}
				pr.BandwidthLimit = bw
			case "max_delete":
				s := strings.TrimSuffix(strings.TrimSpace(p.str(v, f)), "%")
				if s == "" {
					return
				}
				x, err := strconv.ParseFloat(s, 64)
				if err != nil || !validPercent(x) {
					// ParseFloat reads "NaN" and "Inf", which would switch the guard off.
					p.fail(v, f, "%q: want a percentage above 0 and at most 100, e.g. 50", v.Value)
					return
				}
				pr.MaxDelete = x
			case "delete_window":
				pr.DeleteWindow = p.duration(v, f)
			}
		})
		p.c.Pairs = append(p.c.Pairs, pr)
	}
}

func (p *parser) str(n *yaml.Node, field string) string {
	if n.Kind != yaml.ScalarNode {
		p.fail(n, field, "want a single value, got %s", kind(n))
		return ""
	}
	if n.Tag == "!!null" {
		return ""
	}
	return n.Value
}

func (p *parser) strs(n *yaml.Node, field string) []string {
	if n.Tag == "!!null" {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		p.fail(n, field, "want a list, got %s", kind(n))
		return nil
	}
	var out []string
	for i, e := range n.Content {
		out = append(out, p.str(e, fmt.Sprintf("%s[%d]", field, i)))
	}
	return out
}

func (p *parser) boolean(n *yaml.Node, field string) bool {
	s := p.str(n, field)
	switch strings.ToLower(s) {
	case "", "false", "no", "off":
		return false
	case "true", "yes", "on":
		return true
	}
	p.fail(n, field, "%q: want true or false", s)
	return false
}

func (p *parser) duration(n *yaml.Node, field string) time.Duration {
	s := p.str(n, field)
	if s == "" {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		p.fail(n, field, "%q: want a duration such as 30s, 5m or 1h", s)
		return 0
	}
	return d
}

// relistInterval reads remote_relist_interval: a positive duration or off (RelistOff). 0 is refused rather than
// read as the default (as full_scan_interval does) or as off: either reading would surprise half the users.
func (p *parser) relistInterval(n *yaml.Node, field string) time.Duration {
	s := strings.TrimSpace(p.str(n, field))
	if s == "" {
		return 0
	}
	if strings.EqualFold(s, "off") {
		return RelistOff
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		p.fail(n, field, "%q: want a duration of at least %s such as 24h, or off", s, MinRemoteRelistInterval)
		return 0
	}
	return d
}

// AppendPair adds a pair to the file at path (created, with its folder, when missing), keeping the comments and
// layout of what is there. The result is parsed back and passed to check (when not nil); only if both succeed
// is the file replaced, atomically.
func AppendPair(path string, pr Pair, check func(*Config) error) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("config: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, syntaxProblem(path, err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		doc = yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{{Kind: yaml.MappingNode}}}
	}
	top := doc.Content[0]
	if top.Kind != yaml.MappingNode {
		return nil, &Problem{File: path, Line: top.Line, Msg: "the top level must be a mapping (state_dir, pairs, ...)"}
	}
	var seq *yaml.Node
	for i := 0; i+1 < len(top.Content); i += 2 {
		if top.Content[i].Value == "pairs" {
			seq = top.Content[i+1]
			if seq.Tag == "!!null" {
				*seq = yaml.Node{Kind: yaml.SequenceNode}
			}
		}
	}
	if seq == nil {
		seq = &yaml.Node{Kind: yaml.SequenceNode}
		top.Content = append(top.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: "pairs"}, seq)
	}
	if seq.Kind != yaml.SequenceNode {
		return nil, &Problem{File: path, Line: seq.Line, Field: "pairs", Msg: "want a list of pairs"}
	}
	m := &yaml.Node{Kind: yaml.MappingNode}
	kv := func(k, v string) {
		m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: k},
			&yaml.Node{Kind: yaml.ScalarNode, Value: v})
	}
	if pr.Name != "" {
		kv("name", pr.Name)
	}
	kv("local", pr.Local)
	kv("remote", pr.Remote)
	if pr.Account != "" {
		kv("account", pr.Account)
	}
	if pr.Endpoint != "" {
		kv("endpoint", pr.Endpoint)
	}
	if pr.CAFile != "" {
		kv("ca_file", pr.CAFile)
	}
	if pr.Conflict != "" {
		kv("conflict", pr.Conflict)
	}
	if len(pr.Ignore) > 0 {
		ig := &yaml.Node{Kind: yaml.SequenceNode}
		for _, s := range pr.Ignore {
			ig.Content = append(ig.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: s})
		}
		m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: "ignore"}, ig)
	}
	if pr.PollInterval > 0 {
		kv("poll_interval", pr.PollInterval.String())
	}
	if pr.MaxDelete > 0 {
		kv("max_delete", strconv.FormatFloat(pr.MaxDelete, 'g', -1, 64))
	}
	if pr.DeleteWindow > 0 {
		kv("delete_window", pr.DeleteWindow.String())
	}
	seq.Content = append(seq.Content, m)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(bytes.NewReader(buf.Bytes()), path)
	if err != nil {
		return nil, err
	}
	if check != nil {
		if err := check(c); err != nil {
			return c, err
		}
	}
	return c, writeAtomic(path, buf.Bytes())
}

// writeAtomic replaces path with data: temp file in the same folder, fsync, rename.
func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	f, err := os.CreateTemp(dir, ".config-*.yaml")
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("config: %w", err)
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return fmt.Errorf("config: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("config: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}
