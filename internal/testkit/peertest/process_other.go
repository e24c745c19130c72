//go:build !unix

package peertest

import (
	"os/exec"
	"testing"
)

func setProcessGroup(*exec.Cmd) {}

// signalGroup can only reach the child itself without process groups.
func signalGroup(cmd *exec.Cmd, _ bool) { _ = cmd.Process.Kill() }

func lowerPriority(int) {}

// runAs changes nothing where there is no root to step down from.
func runAs(testing.TB, *exec.Cmd, string) {}

// GiveTo changes nothing where there is no root to step down from.
func GiveTo(testing.TB, string, string) {}

// UserDir is the test's temp dir where there is no root to step down from.
func UserDir(tb testing.TB, _ string) string { return tb.TempDir() }
