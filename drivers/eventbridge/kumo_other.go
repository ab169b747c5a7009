//go:build !linux

package eventbridge

import "os/exec"

// setProcAttr does nothing outside Linux, which alone can tie a child's
// life to its parent's.
func setProcAttr(*exec.Cmd) {}
