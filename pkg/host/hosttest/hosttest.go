// Package hosttest gives tests a Host whose files live in a temp dir, whose
// init system records calls, and whose commands are scripted.
package hosttest

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	utilsexec "k8s.io/utils/exec"
	fakeexec "k8s.io/utils/exec/testing"

	"github.com/yurtadm/yurtadm/pkg/host"
)

// Init is a fake init system. It records every call; Fail makes a call fail.
type Init struct {
	mu     sync.Mutex
	Calls  []string
	Active map[string]bool
	// Fail maps "start kubelet" style keys to the error to return.
	Fail map[string]error
	// OnStart, when set, runs when a service starts (e.g. to plant files
	// a real kubelet would write).
	OnStart func(service string)
}

var _ host.InitSystem = &Init{}

func (f *Init) record(op, svc string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := strings.TrimSpace(op + " " + svc)
	f.Calls = append(f.Calls, key)
	if f.Active == nil {
		f.Active = map[string]bool{}
	}
	if err := f.Fail[key]; err != nil {
		return err
	}
	switch op {
	case "start", "restart":
		f.Active[svc] = true
	case "stop":
		f.Active[svc] = false
	}
	return nil
}

func (f *Init) EnableCommand(s string) string { return "systemctl enable " + s }
func (f *Init) ServiceStart(s string) error {
	err := f.record("start", s)
	if err == nil && f.OnStart != nil {
		f.OnStart(s)
	}
	return err
}
func (f *Init) ServiceStop(s string) error { return f.record("stop", s) }
func (f *Init) ServiceRestart(s string) error {
	err := f.record("restart", s)
	if err == nil && f.OnStart != nil {
		f.OnStart(s)
	}
	return err
}

// ServiceRestartNoReload records as ServiceRestart does (neither records
// the real one's daemon-reload).
func (f *Init) ServiceRestartNoReload(s string) error { return f.ServiceRestart(s) }
func (f *Init) ServiceExists(s string) bool           { return true }
func (f *Init) ServiceIsEnabled(s string) bool        { return true }
func (f *Init) ServiceIsActive(s string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.Active[s]
}
func (f *Init) DaemonReload() error   { return f.record("daemon-reload", "") }
func (f *Init) Enable(s string) error { return f.record("enable", s) }
func (f *Init) CallLog() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.Calls...)
}

// Script answers commands by their command line ("crictl ps -q"): a result
// per line. A command with no answer fails the test.
type Script struct {
	T       testing.TB
	mu      sync.Mutex
	Answers map[string]Answer
	// Ran lists every command line, in order.
	Ran []string
	// LookPath lists the commands present in PATH; nil means all.
	Path map[string]bool
	// Prefixes answers a command line with no exact answer by its
	// longest matching prefix ("crictl ... inspecti -q ").
	Prefixes map[string]Answer
	// Sequences answers a command line with its answers in turn, the
	// last one for every later call; it wins over Answers.
	Sequences map[string][]Answer
	// Funcs answers a command line with what the function returns when
	// it runs; it wins over the others.
	Funcs map[string]func() Answer
}

// Answer is a scripted command result.
type Answer struct {
	Out string
	Err error
}

var _ utilsexec.Interface = &Script{}

func (s *Script) Command(cmd string, args ...string) utilsexec.Cmd {
	return s.CommandContext(context.Background(), cmd, args...)
}

func (s *Script) CommandContext(_ context.Context, cmd string, args ...string) utilsexec.Cmd {
	line := strings.TrimSpace(cmd + " " + strings.Join(args, " "))
	s.mu.Lock()
	s.Ran = append(s.Ran, line)
	a, ok := s.Answers[line]
	if seq := s.Sequences[line]; len(seq) > 0 {
		a, ok = seq[0], true
		if len(seq) > 1 {
			s.Sequences[line] = seq[1:]
		}
	}
	if fn := s.Funcs[line]; fn != nil {
		a, ok = fn(), true
	}
	if !ok {
		best := -1
		for p, pa := range s.Prefixes {
			if strings.HasPrefix(line, p) && len(p) > best {
				a, ok, best = pa, true, len(p)
			}
		}
	}
	s.mu.Unlock()
	if !ok {
		s.T.Errorf("unexpected command: %s", line)
		a = Answer{Err: fmt.Errorf("unexpected command %q", line)}
	}
	out := []byte(a.Out)
	return &fakeexec.FakeCmd{
		CombinedOutputScript: []fakeexec.FakeAction{func() ([]byte, []byte, error) { return out, nil, a.Err }},
		OutputScript:         []fakeexec.FakeAction{func() ([]byte, []byte, error) { return out, nil, a.Err }},
		RunScript:            []fakeexec.FakeAction{func() ([]byte, []byte, error) { return out, nil, a.Err }},
	}
}

func (s *Script) LookPath(file string) (string, error) {
	if s.Path == nil || s.Path[file] {
		return "/usr/bin/" + file, nil
	}
	return "", &os.PathError{Op: "lookpath", Path: file, Err: utilsexec.ErrExecutableNotFound}
}

// New returns a Host rooted in a fresh temp dir with a fake init system and
// a scripted exec.
func New(t testing.TB) (*host.Host, *Init, *Script) {
	t.Helper()
	in := &Init{}
	sc := &Script{T: t, Answers: map[string]Answer{}}
	return &host.Host{FS: host.FS{Root: t.TempDir()}, Exec: sc, Init: in}, in, sc
}

// WriteFile plants a file below the host root.
func WriteFile(t testing.TB, h *host.Host, p, content string) {
	t.Helper()
	if err := h.FS.WriteFileAtomic(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Tree lists every file and directory below the host root with its mode and
// content, one line each, sorted: a snapshot to compare before and after.
func Tree(t testing.TB, h *host.Host) []string {
	t.Helper()
	var lines []string
	root := h.FS.Root
	err := filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if info.IsDir() {
			lines = append(lines, fmt.Sprintf("%s/ %v", rel, info.Mode()))
			return nil
		}
		if info.Mode()&os.ModeSymlink != 0 {
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			lines = append(lines, fmt.Sprintf("%s -> %s", rel, target))
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		lines = append(lines, fmt.Sprintf("%s %v %q", rel, info.Mode(), b))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return lines
}

// ReadTarGz returns every regular file of a gzipped tar by its name
// below the archive's top directory ("top/a/b" is "a/b").
func ReadTarGz(t testing.TB, p string) map[string][]byte {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	tr := tar.NewReader(gz)
	files := map[string][]byte{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("%s: %s: %v", p, h.Name, err)
		}
		_, name, _ := strings.Cut(h.Name, "/")
		files[name] = b
	}
}
