package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Unit search path, highest priority first, as systemd uses it for system
// units (the generator and transient directories are left out: nothing here
// writes them). Paths are inside the root given by SYSTEMCTL_ROOT.
var unitDirs = []string{
	"/etc/systemd/system",
	"/run/systemd/system",
	"/usr/local/lib/systemd/system",
	"/usr/lib/systemd/system",
	"/lib/systemd/system",
}

// systemd's default PATH for services (split-usr build, as on Debian 12).
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

const (
	defaultRestartSec     = 100 * time.Millisecond
	defaultTimeoutStopSec = 10 * time.Second // systemd's is 90s; a test harness wants less
	defaultStartLimitIval = 10 * time.Second
	defaultStartLimitBrst = 5
)

// errNotFound is returned by loadUnit when no unit file exists.
var errNotFound = errors.New("not found")

// envFile is one EnvironmentFile= entry.
type envFile struct {
	Path     string // as written in the unit, after specifier expansion
	Optional bool   // written with a leading '-'
}

// execCommand is one ExecStart= command line, parsed but not yet expanded.
type execCommand struct {
	Path          string   // the executable
	Argv          []string // argv, argv[0] included
	IgnoreFailure bool     // '-' prefix: a non-zero exit counts as success
	NoEnvExpand   bool     // ':' prefix: no $VAR / ${VAR} expansion
}

// Unit is a service unit as systemd would have loaded it: the fragment and
// its drop-ins merged, in order.
type Unit struct {
	Name     string   // full name, e.g. kubelet.service
	Path     string   // fragment path inside the root ("" if none)
	Masked   bool     // the fragment is a symlink to /dev/null
	DropIns  []string // drop-in paths inside the root, in the order applied
	Warnings []string // what systemd would log while loading, and ignore

	Description      string
	Type             string
	Env              []string // Environment=, KEY=VALUE, later assignments replace earlier ones
	EnvFiles         []envFile
	ExecStart        []execCommand
	Restart          string
	RestartSec       time.Duration
	TimeoutStopSec   time.Duration
	KillMode         string
	WorkingDirectory string
	WorkingDirOpt    bool // WorkingDirectory=-...
	StartLimitIval   time.Duration
	StartLimitBurst  int
	WantedBy         []string
	RequiredBy       []string
}

// Command is what to run: ExecStart with the environment applied.
type Command struct {
	Path          string
	Argv          []string
	Env           []string
	Dir           string
	IgnoreFailure bool
}

// splitName turns "kubelet" or "kubelet.service" into "kubelet.service".
func normalizeName(name string) (string, error) {
	if name == "" || strings.ContainsAny(name, "/\x00") || strings.HasPrefix(name, ".") {
		return "", fmt.Errorf("Invalid unit name %q", name)
	}
	if !strings.HasSuffix(name, ".service") {
		if i := strings.LastIndexByte(name, '.'); i >= 0 {
			switch name[i+1:] {
			case "socket", "target", "timer", "mount", "path", "slice", "scope", "device", "swap", "automount":
				return "", fmt.Errorf("Unit type of %q is not supported by this systemctl stand-in (only .service)", name)
			}
		}
		name += ".service"
	}
	return name, nil
}

// shortName is the name without ".service": the base of the state and log files.
func shortName(full string) string { return strings.TrimSuffix(full, ".service") }

// template splits "foo@bar.service" into "foo@.service" and "bar".
func template(full string) (tmpl, instance string, ok bool) {
	base := strings.TrimSuffix(full, ".service")
	i := strings.IndexByte(base, '@')
	if i < 0 {
		return "", "", false
	}
	return base[:i+1] + ".service", base[i+1:], true
}

func inRoot(root, p string) string { return filepath.Join(root, p) }

// findFragment returns the path (inside root) of the unit file for name.
func findFragment(root, name string) (string, error) {
	names := []string{name}
	if t, inst, ok := template(name); ok && inst != "" {
		names = append(names, t)
	}
	for _, n := range names {
		for _, d := range unitDirs {
			p := filepath.Join(d, n)
			if _, err := os.Lstat(inRoot(root, p)); err == nil {
				return p, nil
			}
		}
	}
	return "", errNotFound
}

// findDropIns returns the drop-in files for name (paths inside root) in the
// order systemd applies them: sorted by file name; of two files with the same
// name, the one in the higher-priority directory wins.
func findDropIns(root, name string) []string {
	names := []string{name}
	if t, inst, ok := template(name); ok && inst != "" {
		// The template's drop-ins apply too; the instance's win on a clash.
		names = []string{name, t}
	}
	chosen := map[string]string{}
	for _, n := range names {
		for _, d := range unitDirs {
			dir := filepath.Join(d, n+".d")
			entries, err := os.ReadDir(inRoot(root, dir))
			if err != nil {
				continue
			}
			for _, e := range entries {
				if !strings.HasSuffix(e.Name(), ".conf") || e.IsDir() {
					continue
				}
				if _, seen := chosen[e.Name()]; !seen {
					chosen[e.Name()] = filepath.Join(dir, e.Name())
				}
			}
		}
	}
	keys := make([]string, 0, len(chosen))
	for k := range chosen {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, chosen[k])
	}
	return out
}

// loadUnit reads the unit name (normalized) and its drop-ins under root.
// It returns errNotFound (wrapped) when there is no fragment.
func loadUnit(root, name string) (*Unit, error) {
	u := &Unit{
		Name:            name,
		Restart:         "no",
		RestartSec:      defaultRestartSec,
		TimeoutStopSec:  defaultTimeoutStopSec,
		KillMode:        "control-group",
		StartLimitIval:  defaultStartLimitIval,
		StartLimitBurst: defaultStartLimitBrst,
	}
	frag, err := findFragment(root, name)
	if err != nil {
		return u, fmt.Errorf("Unit %s not found: %w", name, err)
	}
	u.Path = frag
	if t, err := os.Readlink(inRoot(root, frag)); err == nil && t == "/dev/null" {
		u.Masked = true
		return u, nil
	}
	if err := u.parseFile(root, frag); err != nil {
		return u, err
	}
	for _, d := range findDropIns(root, name) {
		u.DropIns = append(u.DropIns, d)
		if err := u.parseFile(root, d); err != nil {
			return u, err
		}
	}
	return u, nil
}

// logicalLines splits unit file text into lines the way systemd's
// config_parse does: comment lines (first non-blank is '#' or ';') are
// dropped, even inside a continuation; a line ending in an unescaped
// backslash continues on the next one, the backslash becoming a space.
func logicalLines(text string) []string {
	var out []string
	var cont *strings.Builder
	raw := strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
	for _, l := range raw {
		if t := strings.TrimLeft(l, " \t"); t != "" && (t[0] == '#' || t[0] == ';') {
			continue
		}
		var p string
		if cont != nil {
			cont.WriteString(l)
			p = cont.String()
		} else {
			p = l
		}
		escaped := false
		for i := 0; i < len(p); i++ {
			if escaped {
				escaped = false
			} else if p[i] == '\\' {
				escaped = true
			}
		}
		if escaped {
			if cont == nil {
				cont = &strings.Builder{}
			} else {
				cont.Reset()
			}
			cont.WriteString(p[:len(p)-1] + " ")
			continue
		}
		cont = nil
		out = append(out, p)
	}
	if cont != nil {
		out = append(out, cont.String())
	}
	return out
}

func (u *Unit) warnf(file string, format string, args ...any) {
	u.Warnings = append(u.Warnings, file+": "+fmt.Sprintf(format, args...))
}

// parseFile applies one unit file or drop-in (path inside root).
func (u *Unit) parseFile(root, path string) error {
	data, err := os.ReadFile(inRoot(root, path))
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	section := ""
	for _, line := range logicalLines(string(data)) {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if line[0] == '[' {
			if line[len(line)-1] != ']' {
				u.warnf(path, "invalid section header %q, ignoring", line)
				section = "!"
				continue
			}
			section = line[1 : len(line)-1]
			continue
		}
		eq := strings.IndexByte(line, '=')
		if eq < 0 {
			u.warnf(path, "missing '=', ignoring line %q", line)
			continue
		}
		key := strings.TrimSpace(line[:eq])
		val := strings.TrimSpace(line[eq+1:])
		switch section {
		case "":
			u.warnf(path, "assignment outside of section, ignoring: %s", line)
		case "Unit":
			u.unitKey(path, key, val)
		case "Service":
			u.serviceKey(path, key, val)
		case "Install":
			u.installKey(path, key, val)
		}
	}
	return nil
}

func (u *Unit) unitKey(path, key, val string) {
	var err error
	switch key {
	case "Description":
		u.Description, err = u.specifiers(val)
	case "StartLimitIntervalSec":
		u.StartLimitIval, err = parseTimespan(val)
	case "StartLimitBurst":
		u.StartLimitBurst, err = strconv.Atoi(val)
	}
	if err != nil {
		u.warnf(path, "%s=%s: %v, ignoring", key, val, err)
	}
}

func (u *Unit) installKey(path, key, val string) {
	switch key {
	case "WantedBy", "RequiredBy":
		if val == "" {
			if key == "WantedBy" {
				u.WantedBy = nil
			} else {
				u.RequiredBy = nil
			}
			return
		}
		for _, w := range strings.Fields(val) {
			w, err := u.specifiers(w)
			if err != nil {
				u.warnf(path, "%s=%s: %v, ignoring", key, val, err)
				continue
			}
			if key == "WantedBy" {
				u.WantedBy = append(u.WantedBy, w)
			} else {
				u.RequiredBy = append(u.RequiredBy, w)
			}
		}
	}
}

func (u *Unit) serviceKey(path, key, val string) {
	var err error
	switch key {
	case "Type":
		u.Type = val
	case "Environment":
		err = u.addEnvironment(val)
	case "EnvironmentFile":
		if val == "" {
			u.EnvFiles = nil
			return
		}
		f := envFile{}
		if strings.HasPrefix(val, "-") {
			f.Optional = true
			val = val[1:]
		}
		f.Path, err = u.specifiers(val)
		if err == nil && !filepath.IsAbs(f.Path) {
			err = fmt.Errorf("path is not absolute")
		}
		if err == nil {
			u.EnvFiles = append(u.EnvFiles, f)
		}
	case "ExecStart":
		if val == "" {
			u.ExecStart = nil
			return
		}
		var cmds []execCommand
		cmds, err = u.parseExec(val)
		u.ExecStart = append(u.ExecStart, cmds...)
	case "Restart":
		switch val {
		case "no", "always", "on-success", "on-failure", "on-abnormal", "on-abort", "on-watchdog":
			u.Restart = val
		default:
			err = fmt.Errorf("unknown value")
		}
	case "RestartSec":
		var d time.Duration
		if d, err = parseTimespan(val); err == nil {
			u.RestartSec = d
		}
	case "TimeoutStopSec", "TimeoutSec":
		var d time.Duration
		if d, err = parseTimespan(val); err == nil {
			u.TimeoutStopSec = d
		}
	case "KillMode":
		switch val {
		case "control-group", "mixed", "process", "none":
			u.KillMode = val
		default:
			err = fmt.Errorf("unknown value")
		}
	case "WorkingDirectory":
		if val == "" {
			u.WorkingDirectory, u.WorkingDirOpt = "", false
			return
		}
		opt := strings.HasPrefix(val, "-")
		if opt {
			val = val[1:]
		}
		if val != "~" {
			val, err = u.specifiers(val)
		}
		if err == nil {
			u.WorkingDirectory, u.WorkingDirOpt = val, opt
		}
	case "StartLimitInterval": // the old, [Service] spelling
		var d time.Duration
		if d, err = parseTimespan(val); err == nil {
			u.StartLimitIval = d
		}
	}
	if err != nil {
		u.warnf(path, "%s=%s: %v, ignoring", key, val, err)
	}
}

// addEnvironment applies one Environment= value: whitespace-separated
// assignments, each of which may be quoted and C-escaped; an empty value
// resets the list; invalid assignments are ignored.
func (u *Unit) addEnvironment(val string) error {
	if val == "" {
		u.Env = nil
		return nil
	}
	p := val
	for {
		w, ok, err := extractWord(&p, true)
		if err != nil {
			return fmt.Errorf("invalid syntax")
		}
		if !ok {
			return nil
		}
		w, err = u.specifiers(w)
		if err != nil {
			return err
		}
		if !validAssignment(w) {
			u.Warnings = append(u.Warnings, fmt.Sprintf("invalid environment assignment, ignoring: %s", w))
			continue
		}
		u.Env = envReplace(u.Env, w)
	}
}

func validEnvName(n string) bool {
	if n == "" || (n[0] >= '0' && n[0] <= '9') {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

func validAssignment(a string) bool {
	k, v, ok := strings.Cut(a, "=")
	return ok && validEnvName(k) && utf8.ValidString(v) && !strings.ContainsRune(v, 0)
}

// envReplace sets KEY=VALUE in env, replacing an earlier value of KEY.
func envReplace(env []string, kv string) []string {
	k, _, _ := strings.Cut(kv, "=")
	for i, e := range env {
		if ek, _, _ := strings.Cut(e, "="); ek == k {
			out := append(append([]string{}, env[:i]...), env[i+1:]...)
			return append(out, kv)
		}
	}
	return append(env, kv)
}

func envGet(env []string, k string) (string, bool) {
	for i := len(env) - 1; i >= 0; i-- {
		if ek, v, _ := strings.Cut(env[i], "="); ek == k {
			return v, true
		}
	}
	return "", false
}

// parseExec parses one ExecStart= value into command lines (a lone ';'
// separates them), the way systemd's config_parse_exec does.
func (u *Unit) parseExec(val string) ([]execCommand, error) {
	var out []execCommand
	p := val
	for {
		p = strings.TrimLeft(p, " \t\n")
		if p == "" {
			return out, nil
		}
		first, ok, err := extractWord(&p, true)
		if err != nil {
			return out, fmt.Errorf("invalid syntax")
		}
		if !ok {
			return out, nil
		}
		var c execCommand
		separateArgv0 := false
		f := first
	prefixes:
		for f != "" {
			switch f[0] {
			case '-':
				if c.IgnoreFailure {
					break prefixes
				}
				c.IgnoreFailure = true
			case '@':
				if separateArgv0 {
					break prefixes
				}
				separateArgv0 = true
			case ':':
				if c.NoEnvExpand {
					break prefixes
				}
				c.NoEnvExpand = true
			case '+', '!', '|':
				// privilege / shell prefixes: accepted, no effect here
			default:
				break prefixes
			}
			f = f[1:]
		}
		path, err := u.specifiers(f)
		if err != nil {
			return out, err
		}
		if path == "" {
			return out, fmt.Errorf("empty executable name")
		}
		c.Path = filepath.Clean(path)
		if !separateArgv0 {
			c.Argv = append(c.Argv, c.Path)
		}
		semicolon := false
		for {
			p = strings.TrimLeft(p, " \t\n")
			if p == "" {
				break
			}
			if p[0] == ';' && (len(p) == 1 || strings.ContainsRune(" \t\n", rune(p[1]))) {
				p = p[1:]
				semicolon = true
				break
			}
			if strings.HasPrefix(p, `\;`) && (len(p) == 2 || strings.ContainsRune(" \t\n", rune(p[2]))) {
				p = p[2:]
				c.Argv = append(c.Argv, ";")
				continue
			}
			w, ok, err := extractWord(&p, true)
			if err != nil {
				return out, fmt.Errorf("invalid syntax")
			}
			if !ok {
				break
			}
			w, err = u.specifiers(w)
			if err != nil {
				return out, err
			}
			c.Argv = append(c.Argv, w)
		}
		if len(c.Argv) == 0 {
			return out, fmt.Errorf("empty executable name or zeroeth argument")
		}
		out = append(out, c)
		if !semicolon {
			return out, nil
		}
	}
}

// extractWord is systemd's extract_first_word with whitespace separators and
// EXTRACT_UNQUOTE, plus EXTRACT_CUNESCAPE when cunescape is set (strict:
// an unbalanced quote or a bad escape is an error) or EXTRACT_RELAX when it
// is not (what $VAR word splitting uses: unbalanced quotes end the word,
// a backslash takes the next character literally).
func extractWord(p *string, cunescape bool) (string, bool, error) {
	s := strings.TrimLeft(*p, " \t\n\r")
	if s == "" {
		*p = ""
		return "", false, nil
	}
	var b strings.Builder
	var quote byte
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == '\\':
			if i+1 >= len(s) {
				if cunescape {
					return "", false, fmt.Errorf("trailing backslash")
				}
				i++
				continue
			}
			if cunescape {
				r, n, err := cunescapeOne(s[i+1:])
				if err != nil {
					return "", false, err
				}
				b.WriteString(r)
				i += 1 + n
			} else {
				b.WriteByte(s[i+1])
				i += 2
			}
		case quote != 0:
			if c == quote {
				quote = 0
			} else {
				b.WriteByte(c)
			}
			i++
		case c == '\'' || c == '"':
			quote = c
			i++
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			*p = strings.TrimLeft(s[i:], " \t\n\r")
			return b.String(), true, nil
		default:
			b.WriteByte(c)
			i++
		}
	}
	if quote != 0 && cunescape {
		return "", false, fmt.Errorf("unbalanced quote")
	}
	*p = ""
	return b.String(), true, nil
}

// cunescapeOne decodes one C escape (the text after the backslash) and
// returns the result and how many bytes it used.
func cunescapeOne(s string) (string, int, error) {
	simple := map[byte]string{'a': "\a", 'b': "\b", 'f': "\f", 'n': "\n", 'r': "\r", 't': "\t", 'v': "\v",
		'\\': "\\", '"': "\"", '\'': "'", 's': " "}
	if r, ok := simple[s[0]]; ok {
		return r, 1, nil
	}
	hexval := func(h string) (uint64, bool) {
		v, err := strconv.ParseUint(h, 16, 32)
		return v, err == nil
	}
	switch s[0] {
	case 'x':
		if len(s) >= 3 {
			if v, ok := hexval(s[1:3]); ok && v != 0 {
				return string([]byte{byte(v)}), 3, nil
			}
		}
	case 'u':
		if len(s) >= 5 {
			if v, ok := hexval(s[1:5]); ok && v != 0 && utf8.ValidRune(rune(v)) {
				return string(rune(v)), 5, nil
			}
		}
	case 'U':
		if len(s) >= 9 {
			if v, ok := hexval(s[1:9]); ok && v != 0 && utf8.ValidRune(rune(v)) {
				return string(rune(v)), 9, nil
			}
		}
	case '0', '1', '2', '3', '4', '5', '6', '7':
		if len(s) >= 3 {
			if v, err := strconv.ParseUint(s[:3], 8, 16); err == nil && v != 0 && v < 256 {
				return string([]byte{byte(v)}), 3, nil
			}
		}
	}
	return "", 0, fmt.Errorf("invalid escape sequence \\%c", s[0])
}

// specifiers expands systemd's %-specifiers that make sense here; an
// unknown one is an error, as in systemd.
func (u *Unit) specifiers(s string) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	prefix := shortName(u.Name)
	instance := ""
	if i := strings.IndexByte(prefix, '@'); i >= 0 {
		prefix, instance = prefix[:i], prefix[i+1:]
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 >= len(s) {
			return "", fmt.Errorf("trailing %%")
		}
		i++
		switch s[i] {
		case '%':
			b.WriteByte('%')
		case 'n':
			b.WriteString(u.Name)
		case 'N':
			b.WriteString(shortName(u.Name))
		case 'p', 'P':
			b.WriteString(prefix)
		case 'i', 'I':
			b.WriteString(instance)
		case 'f':
			if instance != "" {
				b.WriteString("/" + instance)
			} else {
				b.WriteString("/" + prefix)
			}
		case 't':
			b.WriteString("/run")
		case 'S':
			b.WriteString("/var/lib")
		case 'C':
			b.WriteString("/var/cache")
		case 'L':
			b.WriteString("/var/log")
		case 'E':
			b.WriteString("/etc")
		case 'T':
			b.WriteString("/tmp")
		case 'V':
			b.WriteString("/var/tmp")
		case 'h':
			b.WriteString("/root")
		case 's':
			b.WriteString("/bin/sh")
		case 'u', 'g':
			b.WriteString("root")
		case 'U', 'G':
			b.WriteString("0")
		case 'H', 'l':
			h, _ := os.Hostname()
			if s[i] == 'l' {
				h, _, _ = strings.Cut(h, ".")
			}
			b.WriteString(h)
		case 'y':
			b.WriteString(u.Path)
		case 'Y':
			b.WriteString(filepath.Dir(u.Path))
		default:
			return "", fmt.Errorf("unsupported specifier %%%c", s[i])
		}
	}
	return b.String(), nil
}

// parseTimespan parses a systemd time span: "10", "100ms", "1min 30s", "infinity".
func parseTimespan(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "infinity" {
		return 24 * time.Hour, nil
	}
	units := []struct {
		names []string
		d     time.Duration
	}{
		{[]string{"usec", "us", "µs"}, time.Microsecond},
		{[]string{"msec", "ms"}, time.Millisecond},
		{[]string{"seconds", "second", "sec", "s"}, time.Second},
		{[]string{"minutes", "minute", "min", "m"}, time.Minute},
		{[]string{"hours", "hour", "hr", "h"}, time.Hour},
		{[]string{"days", "day", "d"}, 24 * time.Hour},
		{[]string{"weeks", "week", "w"}, 7 * 24 * time.Hour},
	}
	if s == "" {
		return 0, fmt.Errorf("empty time span")
	}
	var total time.Duration
	for s != "" {
		s = strings.TrimLeft(s, " \t")
		j := 0
		for j < len(s) && (s[j] >= '0' && s[j] <= '9' || s[j] == '.') {
			j++
		}
		if j == 0 {
			return 0, fmt.Errorf("invalid time span")
		}
		num, err := strconv.ParseFloat(s[:j], 64)
		if err != nil {
			return 0, fmt.Errorf("invalid time span")
		}
		s = strings.TrimLeft(s[j:], " \t")
		k := 0
		for k < len(s) && !(s[k] >= '0' && s[k] <= '9') && s[k] != ' ' && s[k] != '\t' {
			k++
		}
		unit := s[:k]
		s = s[k:]
		mult := time.Duration(-1)
		if unit == "" {
			mult = time.Second
		}
		for _, un := range units {
			for _, n := range un.names {
				if n == unit {
					mult = un.d
				}
			}
		}
		if mult < 0 {
			return 0, fmt.Errorf("unknown time unit %q", unit)
		}
		total += time.Duration(num * float64(mult))
	}
	return total, nil
}

// parseEnvFile parses an EnvironmentFile the way systemd's load_env_file
// does: KEY=VALUE lines; values may be single- or double-quoted (inside
// double quotes \" \\ \` \$ and an escaped newline are unescaped, other
// backslashes kept); outside quotes a backslash escapes the next character
// and trailing whitespace is dropped; lines starting with # or ; are
// comments. It returns KEY=VALUE strings in file order.
func parseEnvFile(text string) []string {
	const (
		preKey = iota
		key
		preValue
		value
		valueEscape
		singleQuote
		doubleQuote
		doubleQuoteEscape
		comment
	)
	var out []string
	var k, v strings.Builder
	state := preKey
	keyWS, valueWS := -1, -1 // start of trailing whitespace, -1 if none
	push := func(chompValue bool) {
		ks := k.String()
		if keyWS >= 0 {
			ks = ks[:keyWS]
		}
		vs := v.String()
		if chompValue && valueWS >= 0 {
			vs = vs[:valueWS]
		}
		if kv := ks + "=" + vs; validAssignment(kv) {
			out = envReplace(out, kv)
		}
		k.Reset()
		v.Reset()
	}
	isWS := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
	isNL := func(c byte) bool { return c == '\n' || c == '\r' }
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch state {
		case preKey:
			if c == '#' || c == ';' {
				state = comment
			} else if !isWS(c) {
				state = key
				keyWS = -1
				k.WriteByte(c)
			}
		case key:
			if isNL(c) {
				state = preKey
				k.Reset()
			} else if c == '=' {
				state = preValue
				valueWS = -1
			} else {
				if !isWS(c) {
					keyWS = -1
				} else if keyWS < 0 {
					keyWS = k.Len()
				}
				k.WriteByte(c)
			}
		case preValue:
			switch {
			case isNL(c):
				state = preKey
				push(false)
			case c == '\'':
				state = singleQuote
			case c == '"':
				state = doubleQuote
			case c == '\\':
				state = valueEscape
			case !isWS(c):
				state = value
				v.WriteByte(c)
			}
		case value:
			switch {
			case isNL(c):
				state = preKey
				push(true)
			case c == '\\':
				state = valueEscape
				valueWS = -1
			default:
				if !isWS(c) {
					valueWS = -1
				} else if valueWS < 0 {
					valueWS = v.Len()
				}
				v.WriteByte(c)
			}
		case valueEscape:
			state = value
			if !isNL(c) {
				v.WriteByte(c)
			}
		case singleQuote:
			if c == '\'' {
				state = preValue
			} else {
				v.WriteByte(c)
			}
		case doubleQuote:
			if c == '"' {
				state = preValue
			} else if c == '\\' {
				state = doubleQuoteEscape
			} else {
				v.WriteByte(c)
			}
		case doubleQuoteEscape:
			state = doubleQuote
			if strings.IndexByte("\"\\`$", c) >= 0 {
				v.WriteByte(c)
			} else if c != '\n' {
				v.WriteByte('\\')
				v.WriteByte(c)
			}
		case comment:
			if isNL(c) {
				state = preKey
			}
		}
	}
	switch state {
	case preValue, singleQuote, doubleQuote, doubleQuoteEscape:
		push(false)
	case value, valueEscape:
		push(true)
	}
	return out
}

// Environment returns the environment ExecStart runs with: systemd's default
// PATH, then Environment=, then the EnvironmentFile= files in order (they
// override Environment=). EnvironmentFile paths are read inside root.
// A missing file without '-' is an error, as in systemd.
func (u *Unit) Environment(root string) ([]string, error) {
	env := []string{"PATH=" + defaultPath}
	for _, e := range u.Env {
		env = envReplace(env, e)
	}
	for _, f := range u.EnvFiles {
		matches, err := filepath.Glob(inRoot(root, f.Path))
		if err != nil || len(matches) == 0 {
			matches = []string{inRoot(root, f.Path)}
		}
		for _, m := range matches {
			data, err := os.ReadFile(m)
			if err != nil {
				if f.Optional {
					continue
				}
				return nil, fmt.Errorf("Failed to load environment files: %s: %w", f.Path, err)
			}
			for _, kv := range parseEnvFile(string(data)) {
				env = envReplace(env, kv)
			}
		}
	}
	return env, nil
}

// Command builds what start runs: exactly one ExecStart= command, expanded
// with the unit's environment (env files read now, inside root).
func (u *Unit) Command(root string) (*Command, error) {
	if u.Masked {
		return nil, fmt.Errorf("Unit %s is masked.", u.Name)
	}
	switch len(u.ExecStart) {
	case 0:
		return nil, fmt.Errorf("%s: Service has no ExecStart=, ExecStop=, or SuccessAction=. Refusing.", u.Name)
	case 1:
	default:
		return nil, fmt.Errorf("%s: Service has more than one ExecStart= setting, which is only allowed for Type=oneshot services. Refusing. (A drop-in that replaces ExecStart= must reset it with an empty ExecStart= first.)", u.Name)
	}
	env, err := u.Environment(root)
	if err != nil {
		return nil, err
	}
	ec := u.ExecStart[0]
	argv := ec.Argv
	if !ec.NoEnvExpand {
		argv = expandArgv(argv, env)
	}
	path := ec.Path
	if !filepath.IsAbs(path) {
		found := ""
		for _, d := range filepath.SplitList(defaultPath) {
			cand := filepath.Join(d, path)
			if st, err := os.Stat(cand); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
				found = cand
				break
			}
		}
		if found == "" {
			return nil, fmt.Errorf("%s: Unable to locate executable '%s': No such file or directory", u.Name, path)
		}
		path = found
	}
	dir := "/"
	if u.WorkingDirectory != "" {
		dir = u.WorkingDirectory
		if dir == "~" {
			dir = "/root"
		}
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			if !u.WorkingDirOpt {
				return nil, fmt.Errorf("%s: Changing to the requested working directory failed: %s", u.Name, dir)
			}
			dir = "/"
		}
	}
	return &Command{Path: path, Argv: argv, Env: env, Dir: dir, IgnoreFailure: ec.IgnoreFailure}, nil
}

// expandArgv is systemd's replace_env_argv: a word that is exactly $NAME is
// replaced by the value split into words (quotes in the value honoured;
// unset means no words); elsewhere ${NAME} (and ${NAME:-def},
// ${NAME:+alt}) is replaced without splitting and $$ becomes $; a $NAME that
// is only part of a word is left alone.
func expandArgv(argv []string, env []string) []string {
	var out []string
	for _, a := range argv {
		if len(a) >= 1 && a[0] == '$' && (len(a) == 1 || (a[1] != '{' && a[1] != '$')) {
			v, _ := envGet(env, a[1:])
			p := v
			for {
				w, ok, _ := extractWord(&p, false)
				if !ok {
					break
				}
				out = append(out, w)
			}
			continue
		}
		out = append(out, replaceEnv(a, env))
	}
	return out
}

// replaceEnv replaces ${NAME}, ${NAME:-default}, ${NAME:+alternate} and $$.
func replaceEnv(s string, env []string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 { // unterminated: systemd keeps the text as is
				b.WriteString(s[i:])
				return b.String()
			}
			expr := s[i+2 : i+2+end]
			i += 2 + end
			name, rest := expr, ""
			if j := strings.Index(expr, ":"); j >= 0 {
				name, rest = expr[:j], expr[j:]
			}
			v, set := envGet(env, name)
			switch {
			case strings.HasPrefix(rest, ":-"):
				if !set || v == "" {
					v = replaceEnv(rest[2:], env)
				}
			case strings.HasPrefix(rest, ":+"):
				if set && v != "" {
					v = replaceEnv(rest[2:], env)
				} else {
					v = ""
				}
			}
			b.WriteString(v)
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}
