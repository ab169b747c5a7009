package report

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spate-dev/spate/scenarios"
)

// Claim is the delivery guarantee a run's thresholds assert, stated in one
// sentence with its verdict, e.g. "exactly-once held for 1,204,331
// messages across 3 processor crashes" or "exactly-once violated: 17
// duplicates (examples below)". The thresholds are the claim: a threshold
// that requires no loss (lost == 0), no duplicates (duplicates == 0), no
// aborted reads (aborted_reads == 0) or no reordering (reordered == 0)
// asserts that property, and the guarantee is named after the properties
// asserted: no loss and no duplicates is exactly-once, no loss alone
// at-least-once, no duplicates alone at-most-once.
type Claim struct {
	// Guarantee names what was claimed: exactly-once, at-least-once,
	// at-most-once, read-committed or in-order, with the other properties
	// asserted in parentheses: "exactly-once (no aborted reads)".
	Guarantee string `json:"guarantee"`
	// Checks are the properties asserted: loss, duplicates,
	// aborted_reads, order.
	Checks []string `json:"checks"`
	// Held is true when every threshold asserting them held and the run
	// completed.
	Held bool `json:"held"`
	// Messages is how many messages the claim covers: those confirmed
	// (in a pipeline, on its input).
	Messages int64 `json:"messages"`
	// Statement is the sentence reports print.
	Statement string `json:"statement"`
}

// claimChecks maps the metrics that can assert a property to it, in the
// order properties are named.
var claimChecks = []struct {
	check   string
	metrics []string
}{
	{"loss", []string{"lost", "loss", "lost.ratio", "loss.ratio"}},
	{"duplicates", []string{"duplicates", "duplicates.ratio"}},
	{"aborted_reads", []string{"aborted_reads"}},
	{"order", []string{"reordered", "reordered.ratio"}},
}

// asserts returns the property threshold t asserts (that a count is zero),
// or "".
func asserts(t scenarios.Threshold) string {
	metric, op, limit := t.Left, t.Op, t.Right
	if metric.Metric == "" { // 0 == lost: read it the other way round
		metric, limit = t.Right, t.Left
		op = map[string]string{"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}[op]
	}
	if metric.Metric == "" || limit.Metric != "" || metric.Coef <= 0 {
		return ""
	}
	zero := (op == "==" || op == "<=") && limit.Coef == 0
	if op == "<" && limit.Coef > 0 && limit.Coef <= 1 && !strings.HasSuffix(metric.Metric, ".ratio") {
		zero = true // lost < 1: a count below one is zero
	}
	if !zero {
		return ""
	}
	for _, c := range claimChecks {
		if slices.Contains(c.metrics, metric.Metric) {
			return c.check
		}
	}
	return ""
}

// claim derives the run's claim from its thresholds, evaluated in
// r.Thresholds; nil when they assert none of the properties.
func (r *Results) claim(ts []scenarios.Threshold) *Claim {
	asserted := map[string]bool{}
	failed := map[string]bool{}    // measured, and not as asserted
	undefined := map[string]bool{} // not measured: neither held nor violated
	for i, t := range ts {
		c := asserts(t)
		if c == "" {
			continue
		}
		asserted[c] = true
		if i < len(r.Thresholds) && !r.Thresholds[i].OK {
			if r.Thresholds[i].Value == nil {
				undefined[c] = true
			} else {
				failed[c] = true
			}
		}
	}
	if len(asserted) == 0 {
		return nil
	}
	cl := &Claim{Messages: r.Counts.Acked}
	for _, c := range claimChecks {
		if asserted[c.check] {
			cl.Checks = append(cl.Checks, c.check)
		}
	}
	var main string
	var extra []string
	switch {
	case asserted["loss"] && asserted["duplicates"]:
		main = "exactly-once"
	case asserted["loss"]:
		main = "at-least-once"
	case asserted["duplicates"]:
		main = "at-most-once"
	case asserted["aborted_reads"]:
		main = "read-committed"
	default:
		main = "in-order delivery"
	}
	if asserted["aborted_reads"] && main != "read-committed" {
		extra = append(extra, "no aborted reads")
	}
	if asserted["order"] && main != "in-order delivery" {
		extra = append(extra, "in order")
	}
	cl.Guarantee = main
	if len(extra) > 0 {
		cl.Guarantee += " (" + strings.Join(extra, ", ") + ")"
	}
	across := ""
	if f := r.faultsPhrase(); f != "" {
		across = " across " + f
	}
	switch {
	case len(failed) > 0:
		c := r.Counts
		var what []string
		for _, chk := range claimChecks {
			if !failed[chk.check] {
				continue
			}
			switch chk.check {
			case "loss":
				what = append(what, GroupInt(c.Lost)+" lost")
			case "duplicates":
				what = append(what, plural(c.Duplicates, "duplicate", "duplicates"))
			case "aborted_reads":
				what = append(what, plural(c.AbortedReads, "aborted read", "aborted reads"))
			case "order":
				what = append(what, GroupInt(c.Reordered)+" reordered")
			}
		}
		cl.Statement = fmt.Sprintf("%s violated%s: %s", cl.Guarantee, across, strings.Join(what, ", "))
		if len(r.Examples) > 0 {
			cl.Statement += " (examples below)"
		}
	case r.Error != "" || r.Interrupted || r.Incomplete:
		cl.Statement = fmt.Sprintf("%s not established: the run did not complete", cl.Guarantee)
	case len(undefined) > 0:
		var what []string
		for _, chk := range claimChecks {
			if undefined[chk.check] {
				what = append(what, chk.check)
			}
		}
		cl.Statement = fmt.Sprintf("%s not established: %s undefined for this run", cl.Guarantee, strings.Join(what, ", "))
	default:
		cl.Held = true
		cl.Statement = fmt.Sprintf("%s held for %s%s", cl.Guarantee, plural(cl.Messages, "message", "messages"), across)
	}
	return cl
}

// faultsPhrase names the faults the run injected, counted by kind: "3
// consumer crashes and 1 broker restart". Crashes count each consumer
// (or processor instance) crashed.
func (r *Results) faultsPhrase() string {
	type kind struct {
		noun string
		n    int64
	}
	var order []string
	counts := map[string]*kind{}
	processor := r.Pipeline != nil && r.Pipeline.Processor == scenarios.ProcessorBuiltin
	for _, f := range r.Chaos {
		if !f.OK {
			continue
		}
		noun := faultNouns[f.Action]
		if noun == "" {
			noun = f.Action + " fault"
		}
		if processor && strings.HasPrefix(noun, "consumer ") {
			noun = "processor " + strings.TrimPrefix(noun, "consumer ")
		}
		k := counts[noun]
		if k == nil {
			k = &kind{noun: noun}
			counts[noun] = k
			order = append(order, noun)
		}
		n := int64(1)
		if f.Action == "consumer-crash" {
			switch v := f.Details["consumers"].(type) { // int in a run, float64 read back from JSON
			case int:
				n = int64(v)
			case float64:
				n = int64(v)
			}
		}
		k.n += max(n, 1)
	}
	var parts []string
	for _, noun := range order {
		k := counts[noun]
		pl := noun + "s"
		if strings.HasSuffix(noun, "sh") {
			pl = noun + "es"
		}
		parts = append(parts, plural(k.n, noun, pl))
	}
	switch len(parts) {
	case 0:
		return ""
	case 1:
		return parts[0]
	}
	return strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1]
}

// faultNouns name one fault of each action, as claims count them.
var faultNouns = map[string]string{
	"consumer-crash": "consumer crash",
	"consumer-pause": "consumer pause",
	"slow-consumer":  "consumer slowdown",
	"broker-restart": "broker restart",
	"leader-move":    "leader move",
	"protocol-error": "protocol-error fault",
	"produce-error":  "produce-error fault",
	"network":        "network fault",
	"duplicate":      "duplicate injection",
	"poison":         "poison injection",
	"exec":           "exec fault",
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return GroupInt(n) + " " + many
}
