package chaos

import "syscall"

// setDeathSignal has the kernel kill the command's shell if spate dies
// without stopping it (a second Ctrl-C exits at once).
func setDeathSignal(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }
