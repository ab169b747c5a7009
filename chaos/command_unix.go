//go:build unix

package chaos

import (
	"os/exec"
	"syscall"
)

// ownGroup puts the command in a process group of its own, which its
// cancellation signals as a whole: the shell and whatever it started. A
// terminal's Ctrl-C then reaches spate alone, which stops the command.
func ownGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	setDeathSignal(cmd.SysProcAttr)
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
}

// killGroup kills what is left of the command's process group.
func killGroup(cmd *exec.Cmd) { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
