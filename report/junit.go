package report

import (
	"encoding/xml"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spate-dev/spate/accounting"
)

// JUnit XML, as CI systems (GitHub Actions test reporters, GitLab, Jenkins)
// read it. WriteJUnit writes one <testsuites> document with these suites:
//
//   - thresholds: one test case per threshold, failing when it does not
//     hold (or cannot be evaluated), with the measured value and limit;
//   - correctness: one test case per correctness check, loss, duplicates
//     and order, always present. A check fails only when a threshold that
//     names one of its metrics (lost, loss, lost.ratio, loss.ratio;
//     duplicates, duplicates.ratio; reordered, reordered.ratio) failed;
//     otherwise it passes and its figure is in system-out. Whether a figure
//     is acceptable is the scenario's decision, made by its thresholds, so
//     a run without a loss threshold does not fail on loss here either. In
//     a produce-only run (no consumers) the checks are skipped: nothing
//     was received, so they were not measured;
//   - run: one test case, "completed", with an error when the run hit a
//     runtime error and a failure when it was interrupted;
//   - chaos (only when the scenario injected faults): one test case per
//     fault, with an error when the fault could not be applied or
//     reverted, and its window figures in system-out.
//
// The suites' counts add up to the document's. Test case names are the
// threshold expressions and check names; class names are
// spate.SCENARIO.SUITE.

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string           `xml:"name,attr"`
	Tests      int              `xml:"tests,attr"`
	Failures   int              `xml:"failures,attr"`
	Errors     int              `xml:"errors,attr"`
	Skipped    int              `xml:"skipped,attr"`
	Time       string           `xml:"time,attr"`
	Timestamp  string           `xml:"timestamp,attr,omitempty"`
	Properties *junitProperties `xml:"properties,omitempty"`
	Cases      []junitCase      `xml:"testcase"`
}

type junitProperties struct {
	List []junitProperty `xml:"property"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitProblem `xml:"failure,omitempty"`
	Error     *junitProblem `xml:"error,omitempty"`
	Skipped   *junitSkipped `xml:"skipped,omitempty"`
	SystemOut *junitText    `xml:"system-out,omitempty"`
	out       string        // SystemOut before escaping
}

// junitText is character data written with newlines as they are (the
// encoder's chardata would write them as &#xA;).
type junitText struct {
	Inner string `xml:",innerxml"`
}

func xmlText(s string) *junitText {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return &junitText{Inner: strings.ReplaceAll(b.String(), "&#xA;", "\n")}
}

type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Body    string `xml:",innerxml"` // escaped by problem
}

// junitSkipped marks a test case that was not run, and says why.
type junitSkipped struct {
	Message string `xml:"message,attr"`
}

func problem(message, typ, body string) *junitProblem {
	return &junitProblem{Message: message, Type: typ, Body: xmlText(body).Inner}
}

// correctnessChecks are the JUnit correctness test cases and the threshold
// metrics that decide each.
var correctnessChecks = []struct {
	name    string
	metrics []string
}{
	{"loss", []string{"lost", "loss", "lost.ratio", "loss.ratio"}},
	{"duplicates", []string{"duplicates", "duplicates.ratio"}},
	{"order", []string{"reordered", "reordered.ratio"}},
	// isolation is listed only when the run had transactions (see
	// WriteJUnit).
	{"isolation", []string{"aborted_reads"}},
}

// exampleKindOf maps a correctness check to the kind of examples that
// show its violations.
var exampleKindOf = map[string]string{
	"loss": accounting.ExampleLost, "duplicates": accounting.ExampleDuplicate, "order": accounting.ExampleReordered, "isolation": accounting.ExampleAbortedRead,
}

// WriteJUnit writes r's thresholds, correctness checks, run outcome and
// faults as JUnit XML (see the package's JUnit notes above). The output is
// deterministic.
func WriteJUnit(w io.Writer, r *Results) error {
	class := func(suite string) string {
		name := r.Scenario
		if name == "" {
			name = "scenario"
		}
		return "spate." + name + "." + suite
	}
	props := []junitProperty{
		{"scenario", r.Scenario}, {"file", r.File}, {"driver", r.Driver}, {"run_id", r.RunID},
		{"verdict", r.Verdict}, {"duration_s", ftoa(r.DurationS)},
	}
	timestamp := ""
	if !r.StartedAt.IsZero() {
		timestamp = r.StartedAt.UTC().Format("2006-01-02T15:04:05")
	}

	thresholds := junitSuite{Name: "thresholds", Timestamp: timestamp, Properties: &junitProperties{props}}
	for _, t := range r.Thresholds {
		c := junitCase{Name: t.Expr, Classname: class("thresholds"), Time: "0", out: t.Expr + ": " + thresholdValue(t)}
		if !t.OK {
			msg := t.Expr + " does not hold: measured " + thresholdValue(t)
			typ := "threshold"
			if t.Error != "" {
				msg, typ = t.Expr+" cannot be evaluated: "+t.Error, "undefined"
			}
			c.Failure = problem(msg, typ, msg)
		}
		thresholds.Cases = append(thresholds.Cases, c)
	}

	correctness := junitSuite{Name: "correctness", Timestamp: timestamp}
	for _, chk := range correctnessChecks {
		if chk.name == "isolation" && !r.transactional() {
			continue
		}
		if r.ProduceOnly {
			correctness.Cases = append(correctness.Cases, junitCase{Name: chk.name, Classname: class("correctness"), Time: "0",
				Skipped: &junitSkipped{Message: NotMeasured + ": a produce-only run receives nothing"}})
			continue
		}
		c := junitCase{Name: chk.name, Classname: class("correctness"), Time: "0", out: correctnessFigure(r, chk.name)}
		var named, failed []string
		for _, t := range r.Thresholds {
			measured, limit := thresholdMetrics(t.Expr)
			if !slices.Contains(chk.metrics, measured) && !slices.Contains(chk.metrics, limit) {
				continue
			}
			named = append(named, t.Expr)
			if !t.OK {
				failed = append(failed, t.Expr)
			}
		}
		switch {
		case len(failed) > 0:
			msg := "threshold failed: " + strings.Join(failed, "; ")
			body := c.out
			if ex := r.examplesOf(exampleKindOf[chk.name], 10); len(ex) > 0 {
				body += "\nfirst examples:"
				if chk.name == "loss" {
					body = strings.TrimSuffix(body, "first examples:") + "first lost messages:"
				}
				for _, e := range ex {
					body += fmt.Sprintf("\n  producer %d seq %d%s: %s", e.Producer, e.Seq, exampleLocation(e), e.Problem)
				}
			}
			c.Failure = problem(msg, "correctness", body)
		case len(named) > 0:
			c.out += "\nchecked by: " + strings.Join(named, "; ")
		default:
			c.out += "\nnot checked: no threshold names " + strings.Join(chk.metrics, ", ")
		}
		correctness.Cases = append(correctness.Cases, c)
	}

	run := junitSuite{Name: "run", Timestamp: timestamp}
	completed := junitCase{Name: "completed", Classname: class("run"), Time: ftoa(r.DurationS),
		out: fmt.Sprintf("traffic %s + drain %s; verdict %s", formatSeconds(r.TrafficS), formatSeconds(r.DrainS), r.Verdict)}
	switch {
	case r.Error != "":
		completed.Error = problem(r.Error, "runtime", "the run ended with a runtime error: "+r.Error)
	case r.Interrupted:
		completed.Failure = problem("the run was interrupted", "interrupted", "traffic stopped early and the drain was cut short")
	case r.Incomplete:
		completed.Failure = problem("the run is incomplete", "incomplete", r.incompleteText())
	}
	run.Cases = append(run.Cases, completed)

	suites := []junitSuite{thresholds, correctness, run}
	if len(r.Chaos) > 0 {
		chaos := junitSuite{Name: "chaos", Timestamp: timestamp}
		for i, f := range r.Chaos {
			c := junitCase{Name: faultName(i, f), Classname: class("chaos"), Time: ftoa(f.EndS - f.StartS), out: r.faultFigures(f)}
			if !f.OK {
				msg := f.Error
				if msg == "" {
					msg = "the fault was not applied cleanly"
				}
				c.Error = problem(msg, "chaos", msg)
			}
			chaos.Cases = append(chaos.Cases, c)
		}
		suites = append(suites, chaos)
	}

	doc := junitSuites{Name: "spate: " + r.Scenario, Time: ftoa(r.DurationS)}
	for i := range suites {
		s := &suites[i]
		s.Time = ftoa(r.DurationS)
		s.Tests = len(s.Cases)
		for j := range s.Cases {
			c := &s.Cases[j]
			if c.out != "" {
				c.SystemOut = xmlText(c.out)
			}
			if c.Failure != nil {
				s.Failures++
			}
			if c.Error != nil {
				s.Errors++
			}
			if c.Skipped != nil {
				s.Skipped++
			}
		}
		doc.Tests += s.Tests
		doc.Failures += s.Failures
		doc.Errors += s.Errors
	}
	doc.Suites = suites

	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// correctnessFigure states a correctness check's figures.
func correctnessFigure(r *Results, check string) string {
	c := r.Counts
	of := func(n, d int64, what string) string {
		if d == 0 {
			return GroupInt(n)
		}
		return fmt.Sprintf("%s (%s of %s %s)", GroupInt(n), formatPercent(float64(n)/float64(d)), GroupInt(d), what)
	}
	switch check {
	case "loss":
		return "lost " + of(c.Lost, c.Acked, "acked")
	case "duplicates":
		return "duplicates " + of(c.Duplicates, c.Received, "received")
	case "isolation":
		return "aborted reads " + of(c.AbortedReads, c.Aborted, "aborted") + ", aborted visible (read_uncommitted) " + GroupInt(c.AbortedVisible)
	}
	return "reordered " + of(c.Reordered, c.Received, "received")
}

// faultName names fault i for tables and test cases: its action and target.
func faultName(i int, f FaultResult) string {
	s := fmt.Sprintf("%d %s", i+1, f.Action)
	if f.Target != "" {
		s += " " + f.Target
	}
	return s
}

// faultFigures states a fault's window and what it did to the traffic.
func (r *Results) faultFigures(f FaultResult) string {
	produceOnly := r.ProduceOnly
	var b strings.Builder
	fmt.Fprintf(&b, "window %s..%s", formatSeconds(f.StartS), formatSeconds(f.EndS))
	if produceOnly {
		b.WriteString("; e2e, loss, duplicates, backlog and recovery " + NotMeasured)
		return b.String()
	}
	if l := f.WindowLatencyUS; l != nil && l.Count > 0 {
		fmt.Fprintf(&b, "; e2e in window p50 %s p99 %s max %s", FormatMicros(l.P50), FormatMicros(l.P99), FormatMicros(l.Max))
	}
	fmt.Fprintf(&b, "; lost %s, duplicates %s in window; peak backlog %s; ", r.lostText(f.LostInWindow), GroupInt(f.DuplicatesInWindow), GroupInt(f.PeakBacklog))
	b.WriteString(recoveryText(f.RecoveryS))
	return b.String()
}

// recoveryText states a fault's recovery time.
func recoveryText(s *float64) string {
	if s == nil {
		return "did not recover"
	}
	return "recovered in " + formatSeconds(*s)
}

// ftoa formats seconds for JUnit's time attributes.
func ftoa(s float64) string { return javaFixed(s, 3) }

// transactional reports whether the run wrote in transactions or asserts
// anything about aborted reads.
func (r *Results) transactional() bool {
	c := r.Counts
	if c.Aborted > 0 || c.AbortedReads > 0 || c.AbortedVisible > 0 {
		return true
	}
	for _, t := range r.Thresholds {
		if m, l := thresholdMetrics(t.Expr); m == "aborted_reads" || l == "aborted_reads" {
			return true
		}
	}
	return false
}

// examplesOf returns up to n examples of kind; examples without a kind
// (results written before kinds existed) count as lost.
func (r *Results) examplesOf(kind string, n int) []accounting.Example {
	var out []accounting.Example
	for _, e := range r.Examples {
		if len(out) == n {
			break
		}
		if e.Kind == kind || (e.Kind == "" && kind == accounting.ExampleLost) {
			out = append(out, e)
		}
	}
	return out
}

// exampleLocation says where an example was found: " (partition 2 offset 17,
// txn 4)", or "" when nothing is known.
func exampleLocation(e accounting.Example) string {
	var parts []string
	if e.Partition != nil {
		parts = append(parts, fmt.Sprintf("partition %d", *e.Partition))
	}
	if e.Offset != nil {
		parts = append(parts, fmt.Sprintf("offset %d", *e.Offset))
	}
	if e.Txn != 0 {
		parts = append(parts, fmt.Sprintf("txn %d", e.Txn))
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}
