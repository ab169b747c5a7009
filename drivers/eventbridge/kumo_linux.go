package eventbridge

import (
	"os/exec"
	"syscall"
)

// setProcAttr makes the emulator die with spate, so a killed run leaves no
// emulator behind.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
