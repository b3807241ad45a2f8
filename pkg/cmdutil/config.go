package cmdutil

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"syscall"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// MaxConfigBytes bounds what ReadConfigFile reads: a configuration file is
// a few kilobytes.
const MaxConfigBytes = 1 << 20

// ReadConfigFile reads the YAML document of a --config file: a regular
// file (not a device, FIFO or directory) of at most MaxConfigBytes holding
// one document. Every refusal is a usage error naming the file and why.
func ReadConfigFile(path string) ([]byte, error) {
	// O_NONBLOCK: opening a FIFO must not wait for a writer; the mode is
	// checked on what was opened.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, Usagef("check the --config path", "read --config: %v", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, Usagef("check the --config path", "read --config: %v", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, Usagef("pass a regular YAML file", "--config %s is not a regular file (%s)", path, fi.Mode().Type())
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxConfigBytes+1))
	if err != nil {
		return nil, Usagef("check the --config path", "read --config %s: %v", path, err)
	}
	if len(b) > MaxConfigBytes {
		return nil, Usagef("a configuration file is a few kilobytes: check that --config names the right file",
			"--config %s is larger than %d bytes", path, MaxConfigBytes)
	}
	docs, err := yamlDocuments(b)
	if err != nil {
		return nil, Usagef("check the file's YAML", "parse --config %s: %v", path, err)
	}
	switch len(docs) {
	case 0:
		return nil, Usagef("write the configuration into the file", "--config %s holds no YAML document", path)
	case 1:
		return docs[0], nil
	}
	return nil, Usagef("keep one document in the file (remove the other '---' sections)",
		"--config %s holds %d YAML documents; one is read, so the others would be ignored", path, len(docs))
}

// yamlDocuments splits b into its non-empty YAML documents.
func yamlDocuments(b []byte) ([][]byte, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	var docs [][]byte
	for {
		d, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(stripComments(d))) > 0 {
			docs = append(docs, d)
		}
	}
}

// stripComments drops the lines that hold only a comment.
func stripComments(d []byte) []byte {
	var out bytes.Buffer
	for _, l := range bytes.Split(d, []byte("\n")) {
		if t := bytes.TrimSpace(l); len(t) > 0 && t[0] == '#' {
			continue
		}
		out.Write(l)
		out.WriteByte('\n')
	}
	return out.Bytes()
}
