package eventbridge

// The rules the services set on what options name, checked before any
// request is made: names of buses, queues, rules and sources, and the
// event-pattern language (the pattern option, written as a YAML mapping or
// a JSON string, its shape checked as EventBridge would, and the pattern
// of the rule spate provisions built from it).

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/spate-dev/spate/scenarios"
)

// Name rules of the services, checked before any request is made.
var (
	busName   = match(`^[A-Za-z0-9._\-/]{1,256}$`, "is not a valid event bus name (1 to 256 letters, digits and . _ - /)")
	queueName = match(`^[A-Za-z0-9_-]{1,80}$`, "is not a valid queue name (1 to 80 letters, digits, - and _) nor a queue URL")
	ruleName  = match(`^[A-Za-z0-9._-]{1,64}$`, "is not a valid rule name (1 to 64 letters, digits and . _ -)")
)

// match is the rule of a name that must match re, and msg otherwise.
func match(re, msg string) func(string) string {
	r := regexp.MustCompile(re)
	return func(s string) string {
		if r.MatchString(s) {
			return ""
		}
		return msg
	}
}

func longer(s string, n int) string {
	if len(s) > n {
		return fmt.Sprintf("is longer than %d characters", n)
	}
	return ""
}

func checkQueue(s string) string {
	isURL := strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")
	if u, err := url.Parse(s); isURL && (err != nil || u.Host == "" || strings.Trim(u.Path, "/") == "") {
		return "is not a queue URL such as https://sqs.us-east-1.amazonaws.com/123456789012/name"
	}
	switch {
	case strings.HasSuffix(s, ".fifo"):
		return "is a FIFO queue; spate needs a standard queue"
	case isURL:
		return ""
	}
	return queueName(s)
}

func checkSource(s string) string {
	if msg := longer(s, 256); msg != "" || !strings.HasPrefix(s, "aws.") {
		return msg
	}
	return `starts with "aws.", which AWS reserves for its own events`
}

// EventPattern returns the event pattern of a provisioned rule for this
// run: source, detail-type and the run id, plus the pattern option.
func (d *Driver) EventPattern() (string, error) {
	detail := map[string]any{"run": []string{d.runHex}}
	p := map[string]any{
		"source":      []string{d.opts.Source},
		"detail-type": []string{d.opts.DetailType},
	}
	if d.opts.Pattern != "" {
		var extra map[string]any
		if err := json.Unmarshal([]byte(d.opts.Pattern), &extra); err != nil {
			return "", fmt.Errorf("eventbridge: pattern: %w", err)
		}
		for k, v := range extra {
			if k == "detail" {
				if m, ok := v.(map[string]any); ok {
					for dk, dv := range m {
						detail[dk] = dv
					}
					continue
				}
			}
			p[k] = v
		}
	}
	p["detail"] = detail
	b, err := marshalJSON(p)
	return string(b), err
}

// MaxPatternChars is EventBridge's limit on an event pattern's size.
const MaxPatternChars = 2048

// spateKeys are the pattern fields spate sets itself.
var spateKeys = map[string]string{
	"source":      "spate matches source itself (set it with source:)",
	"detail-type": "spate matches detail-type itself (set it with detail-type:)",
	"detail.run":  "spate matches detail.run itself (it holds the run id)",
}

// checkPattern checks the shape of an event pattern (or a part of it at
// path): a JSON object whose leaves are non-empty arrays of match values.
// It returns "" when the pattern is acceptable.
func checkPattern(p any, path string) string {
	m, ok := p.(map[string]any)
	switch {
	case !ok:
		return `must be a JSON object such as {"detail": {"kind": ["order"]}}`
	case path == "" && len(m) == 0:
		return "must not be empty; leave pattern out for none"
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		sub := strings.TrimPrefix(path+"."+k, ".")
		if msg, ok := spateKeys[sub]; ok {
			return sub + ": " + msg
		}
		if _, isMap := m[k].(map[string]any); !isMap && sub == "detail" {
			return `detail must be an object naming detail fields, such as {"kind": ["order"]}`
		}
		switch v := m[k].(type) {
		case map[string]any:
			if msg := checkPattern(v, sub); msg != "" {
				return msg
			}
		case []any:
			if len(v) == 0 {
				return sub + " must list at least one value to match"
			}
		default:
			b, _ := marshalJSON(v)
			return fmt.Sprintf("%s must be a list of values to match, such as [%s], or an object", sub, b)
		}
	}
	return ""
}

// decodePattern reads the pattern option, written either as a YAML mapping
// or as a JSON string, checks its shape, and keeps it as compact JSON.
func decodePattern(d *scenarios.Decoder, n *yaml.Node, field string, o *Options) {
	var p any
	switch {
	case n.Kind == yaml.ScalarNode && n.Tag == "!!str":
		var err error
		if p, err = parseJSON(n.Value); err != nil {
			d.Errorf(n, field, "is not a JSON event pattern: %s", jsonProblem(n.Value, err))
			return
		}
	case n.Kind == yaml.MappingNode:
		if err := n.Decode(&p); err != nil {
			var te *yaml.TypeError // keys given twice
			if errors.As(err, &te) {
				err = errors.New(strings.Join(te.Errors, "; "))
			}
			d.Errorf(n, field, "is not an event pattern: %v", err)
			return
		}
		p = stringKeys(p)
	default:
		d.Errorf(n, field, "want an event pattern, as a mapping or a JSON string, such as {detail: {kind: [order]}}")
		return
	}
	b, err := marshalJSON(p)
	switch {
	case err == nil && checkPattern(p, "") != "":
		d.Errorf(n, field, "%s", checkPattern(p, ""))
	case err != nil:
		d.Errorf(n, field, "cannot be written as JSON: %v", err)
	case len(b) > MaxPatternChars:
		d.Errorf(n, field, "is %d characters as JSON; EventBridge allows %d", len(b), MaxPatternChars)
	default:
		o.Pattern = string(b)
	}
}

// stringKeys makes the keys of YAML mappings in v strings, as JSON's are
// (YAML reads `1: [x]` with a number for key).
func stringKeys(v any) any {
	switch v := v.(type) {
	case map[any]any:
		m := make(map[string]any, len(v))
		for k, x := range v {
			m[fmt.Sprint(k)] = stringKeys(x)
		}
		return m
	case map[string]any:
		for k, x := range v {
			v[k] = stringKeys(x)
		}
	case []any:
		for i, x := range v {
			v[i] = stringKeys(x)
		}
	}
	return v
}

// parseJSON reads s, one JSON value, keeping numbers as written.
func parseJSON(s string) (any, error) {
	var p any
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	if err := dec.Decode(&p); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("text follows the JSON object")
	}
	return p, nil
}

// jsonProblem describes a JSON syntax error with its position in s.
func jsonProblem(s string, err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line := 1 + strings.Count(s[:min(int(se.Offset), len(s))], "\n")
		return fmt.Sprintf("%v (at character %d, line %d of the pattern)", se, se.Offset, line)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return "the JSON ends too soon; check the closing braces and quotes"
	}
	return err.Error()
}

// marshalJSON writes v as compact JSON without escaping <, > and &, which
// event patterns use (numeric matching).
func marshalJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}
