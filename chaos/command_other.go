//go:build !unix

package chaos

import "os/exec"

// ownGroup does nothing without process groups: cancelling the command
// kills the shell alone.
func ownGroup(*exec.Cmd) {}

func killGroup(cmd *exec.Cmd) { _ = cmd.Process.Kill() }
