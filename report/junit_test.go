package report

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"
)

// junitDoc is what CI systems read from junit.xml.
type junitDoc struct {
	Tests    int `xml:"tests,attr"`
	Failures int `xml:"failures,attr"`
	Errors   int `xml:"errors,attr"`
	Suites   []struct {
		Name     string `xml:"name,attr"`
		Tests    int    `xml:"tests,attr"`
		Failures int    `xml:"failures,attr"`
		Errors   int    `xml:"errors,attr"`
		Cases    []struct {
			Name      string `xml:"name,attr"`
			Classname string `xml:"classname,attr"`
			Failure   *struct {
				Message string `xml:"message,attr"`
			} `xml:"failure"`
			Error *struct {
				Message string `xml:"message,attr"`
			} `xml:"error"`
			SystemOut string `xml:"system-out"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

func parseJUnit(t *testing.T, b []byte) junitDoc {
	t.Helper()
	var d junitDoc
	if err := xml.Unmarshal(b, &d); err != nil {
		t.Fatalf("junit.xml does not parse: %v\n%s", err, b)
	}
	return d
}

func TestWriteJUnitGolden(t *testing.T) {
	r := withChaos(testResults(t))
	var b bytes.Buffer
	if err := WriteJUnit(&b, r); err != nil {
		t.Fatal(err)
	}
	golden(t, "junit.golden.xml", b.Bytes())

	d := parseJUnit(t, b.Bytes())
	// 6 thresholds (3 fail), 3 correctness checks (loss and order fail:
	// "loss == 0" and "reordered.ratio < 1%" failed), the run, 3 faults (1
	// error).
	if d.Tests != 13 || d.Failures != 5 || d.Errors != 1 {
		t.Errorf("tests %d failures %d errors %d, want 13 5 1", d.Tests, d.Failures, d.Errors)
	}
	byName := map[string]int{}
	sum := 0
	for i, s := range d.Suites {
		byName[s.Name] = i
		sum += s.Tests
	}
	if sum != d.Tests {
		t.Errorf("suites hold %d tests, document says %d", sum, d.Tests)
	}
	corr := d.Suites[byName["correctness"]]
	want := map[string]bool{"loss": true, "duplicates": false, "order": true} // failed?
	for _, c := range corr.Cases {
		failed, ok := want[c.Name]
		if !ok {
			t.Errorf("unexpected correctness case %q", c.Name)
			continue
		}
		delete(want, c.Name)
		if (c.Failure != nil) != failed {
			t.Errorf("correctness %s: failure %v, want %v", c.Name, c.Failure != nil, failed)
		}
		if c.Classname != "spate.checkout-spike.correctness" {
			t.Errorf("classname %q", c.Classname)
		}
	}
	if len(want) != 0 {
		t.Errorf("missing correctness cases %v", want)
	}
	if !strings.Contains(corr.Cases[0].Failure.Message, "loss == 0") {
		t.Errorf("loss failure message %q", corr.Cases[0].Failure.Message)
	}
	if d.Suites[byName["chaos"]].Errors != 1 {
		t.Error("the failed exec fault is not an error")
	}
}

// TestWriteJUnitUnchecked: without thresholds the correctness checks pass
// whatever the figures, saying so; an interrupted run fails "completed",
// a runtime error errors it.
func TestWriteJUnitUnchecked(t *testing.T) {
	r := testResults(t)
	r.Thresholds = nil
	r.Interrupted = true
	var b bytes.Buffer
	if err := WriteJUnit(&b, r); err != nil {
		t.Fatal(err)
	}
	golden(t, "junit-unchecked.golden.xml", b.Bytes())
	d := parseJUnit(t, b.Bytes())
	if d.Tests != 4 || d.Failures != 1 || d.Errors != 0 {
		t.Errorf("tests %d failures %d errors %d, want 4 1 0", d.Tests, d.Failures, d.Errors)
	}
	for _, s := range d.Suites {
		for _, c := range s.Cases {
			if s.Name == "correctness" && (c.Failure != nil || !strings.Contains(c.SystemOut, "not checked")) {
				t.Errorf("unchecked %s: %+v", c.Name, c)
			}
		}
		if _, ok := map[string]bool{"thresholds": true, "correctness": true, "run": true}[s.Name]; !ok {
			t.Errorf("unexpected suite %q", s.Name)
		}
	}
	if !strings.Contains(b.String(), "lost 7 (0.35% of 1,990 acked)") {
		t.Error("the loss figure is not in system-out")
	}

	r.Error = "consumer 0: connection reset <&>"
	b.Reset()
	if err := WriteJUnit(&b, r); err != nil {
		t.Fatal(err)
	}
	if d := parseJUnit(t, b.Bytes()); d.Errors != 1 || d.Failures != 0 {
		t.Errorf("runtime error: failures %d errors %d", d.Failures, d.Errors)
	}
}
