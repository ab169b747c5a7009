package chaos

import (
	"fmt"
	"strings"
)

// Failure returns an error naming every fault that failed to apply or to
// revert, unless its entry says required: false, or nil when all worked:
// a run whose faults did not happen as declared must not pass. Call it
// after Stop.
func (r *Runner) Failure() error {
	if r == nil {
		return nil
	}
	var failed []string
	for _, o := range r.occ {
		o.mu.Lock()
		if o.started && o.ended && !o.result.OK && !o.action.Optional {
			failed = append(failed, fmt.Sprintf("chaos[%d] %s at %.1fs failed: %s", o.entry, o.action.Action, o.result.StartS, o.result.Error))
		}
		o.mu.Unlock()
	}
	switch len(failed) {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("%s; the experiment did not happen as declared (an entry with required: false may fail without failing the run)", failed[0])
	}
	return fmt.Errorf("%d faults failed: %s; the experiment did not happen as declared (an entry with required: false may fail without failing the run)",
		len(failed), strings.Join(failed, "; "))
}
