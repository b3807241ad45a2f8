package token

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// listenerOf finds the process listening on TCP port on the loopback or
// any address, reading the proc file system at proc: its PID and command
// name (processName). yurtadm token renew sends the token only to yurthub.
func listenerOf(proc string, port int) (int, string, error) {
	inodes := map[string]bool{}
	for _, f := range []string{"net/tcp", "net/tcp6"} {
		if err := listening(filepath.Join(proc, f), port, inodes); err != nil && !os.IsNotExist(err) {
			return 0, "", err
		}
	}
	if len(inodes) == 0 {
		return 0, "", fmt.Errorf("nothing listens on port %d", port)
	}
	ents, err := os.ReadDir(proc)
	if err != nil {
		return 0, "", err
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		fds, err := os.ReadDir(filepath.Join(proc, e.Name(), "fd"))
		if err != nil {
			continue
		}
		for _, fd := range fds {
			l, err := os.Readlink(filepath.Join(proc, e.Name(), "fd", fd.Name()))
			if err != nil || !strings.HasPrefix(l, "socket:[") {
				continue
			}
			if inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] {
				return pid, processName(filepath.Join(proc, e.Name())), nil
			}
		}
	}
	return 0, "", fmt.Errorf("port %d is listened on, but by no process visible here", port)
}

// processName is a process's command name when its executable has that
// name too; any process can set its command name (prctl PR_SET_NAME), so a
// different executable is named beside it ("yurthub, running /tmp/nc").
func processName(dir string) string {
	b, _ := os.ReadFile(filepath.Join(dir, "comm"))
	comm := strings.TrimSpace(string(b))
	exe, err := os.Readlink(filepath.Join(dir, "exe"))
	if err != nil {
		return comm + ", executable unknown"
	}
	exe = strings.TrimSuffix(exe, " (deleted)")
	if base := filepath.Base(exe); base == comm || (len(comm) == 15 && strings.HasPrefix(base, comm)) {
		return comm
	}
	return comm + ", running " + exe
}

// listening adds the inodes of the sockets in LISTEN state on port (bound to
// 127.0.0.1, ::1 or any address) found in a /proc/net/tcp{,6} file.
func listening(path string, port int, inodes map[string]bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	s.Scan() // header
	want := fmt.Sprintf(":%04X", port)
	for s.Scan() {
		fs := strings.Fields(s.Text())
		// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
		if len(fs) < 10 || fs[3] != "0A" || !strings.HasSuffix(fs[1], want) {
			continue
		}
		addr := strings.TrimSuffix(fs[1], want)
		switch addr {
		case "0100007F", "00000000", "00000000000000000000000001000000", "00000000000000000000000000000000":
			inodes[fs[9]] = true
		}
	}
	return s.Err()
}
