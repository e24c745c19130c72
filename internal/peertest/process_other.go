//go:build !unix

package peertest

import "os/exec"

func setProcessGroup(*exec.Cmd) {}

// signalGroup can only reach the child itself without process groups.
func signalGroup(cmd *exec.Cmd, _ bool) { _ = cmd.Process.Kill() }

func lowerPriority(int) {}
