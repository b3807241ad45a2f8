// Command mkimage wraps one statically linked binary into a one-layer
// container image and writes it as a docker-style image tarball that
// `ctr -n k8s.io images import` loads. The multi-node harness (test/cluster)
// builds the images a node needs with it, since this machine has no
// registry: the pause image, yurthub, and the test workload.
//
// Usage:
//
//	mkimage -binary PATH -path /usr/local/bin/NAME -tag REF [-tag REF...] \
//	        [-entrypoint /usr/local/bin/NAME] [-cmd ARG]... [-tree DIR]... -o OUT.tar
//
// The image config says OS linux and the architecture this tool was built
// for (GOARCH; containerd's import drops images of another platform), Env
// PATH, and Entrypoint (default: the binary's path in the image). The layer
// holds the binary (mode 0755), its parent directories and a /tmp (1777).
// A dynamically linked binary is refused: there is no libc in the image.
// -tree DIR adds every directory, regular file and symlink under DIR at the
// same path under / (the multi-node harness gives kube-proxy's image the
// iptables binaries and the libraries they load this way); those files are
// taken as they are.
// Timestamps are fixed, so the same binary gives the same image digest.
package main

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// epoch is the time stamped on everything, for reproducible digests.
var epoch = time.Unix(0, 0).UTC()

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

type spec struct {
	binary     string
	inImage    string
	tags       []string
	trees      []string
	entrypoint []string
	cmd        []string
	out        string
	arch       string
}

func main() {
	var s spec
	var tags, cmd, trees listFlag
	var entrypoint string
	flag.StringVar(&s.binary, "binary", "", "the static binary to wrap (required)")
	flag.StringVar(&s.inImage, "path", "", "absolute path of the binary in the image (required)")
	flag.Var(&tags, "tag", "image reference to tag the image with (required, repeatable)")
	flag.StringVar(&entrypoint, "entrypoint", "", "entrypoint (default: -path)")
	flag.Var(&cmd, "cmd", "an argument of the image's Cmd (repeatable)")
	flag.Var(&trees, "tree", "a directory whose contents are added under / (repeatable)")
	flag.StringVar(&s.out, "o", "", "output tarball (required)")
	flag.StringVar(&s.arch, "arch", runtime.GOARCH, "architecture in the image config")
	flag.Parse()
	if flag.NArg() > 0 || s.binary == "" || s.inImage == "" || len(tags) == 0 || s.out == "" {
		fmt.Fprintln(os.Stderr, "usage: mkimage -binary PATH -path /usr/local/bin/NAME -tag REF [-tag REF...] [-entrypoint P] [-cmd ARG]... -o OUT.tar")
		os.Exit(2)
	}
	s.tags, s.cmd, s.trees = tags, cmd, trees
	if entrypoint == "" {
		entrypoint = s.inImage
	}
	s.entrypoint = []string{entrypoint}
	if err := build(s); err != nil {
		fmt.Fprintf(os.Stderr, "mkimage: %v\n", err)
		os.Exit(1)
	}
}

func build(s spec) error {
	if !path.IsAbs(s.inImage) || path.Clean(s.inImage) != s.inImage {
		return fmt.Errorf("-path %q must be a clean absolute path", s.inImage)
	}
	bin, err := os.ReadFile(s.binary)
	if err != nil {
		return err
	}
	if err := checkStatic(s.binary); err != nil {
		return err
	}
	refs := map[name.Reference]v1.Image{}
	layerTar, err := layer(s.inImage, bin, s.trees)
	if err != nil {
		return err
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	})
	if err != nil {
		return err
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.OS = "linux"
	cf.Architecture = s.arch
	cf.Created = v1.Time{Time: epoch}
	cf.Config.Entrypoint = s.entrypoint
	cf.Config.Cmd = s.cmd
	cf.Config.Env = []string{defaultPath}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return err
	}
	for _, t := range s.tags {
		ref, err := name.NewTag(t, name.StrictValidation)
		if err != nil {
			// Short names (pause:3.10) are normalised the way containerd's
			// CRI plugin normalises them (docker.io/library/...).
			if ref, err = name.NewTag(t); err != nil {
				return fmt.Errorf("-tag %q: %w", t, err)
			}
		}
		refs[ref] = img
	}
	tmp := s.out + ".tmp"
	if err := tarball.MultiRefWriteToFile(tmp, refs); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, s.out); err != nil {
		return err
	}
	d, _ := img.Digest()
	fmt.Printf("%s: %s %s (%d bytes of binary) tagged %s\n", s.out, d, s.inImage, len(bin), strings.Join(s.tags, ", "))
	return nil
}

// checkStatic refuses an ELF binary with a program interpreter (that is,
// one linked against a dynamic loader and libc the image does not have).
func checkStatic(p string) error {
	f, err := elf.Open(p)
	if err != nil {
		return fmt.Errorf("%s is not an ELF binary: %w", p, err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked (it has a program interpreter); rebuild it with CGO_ENABLED=0", p)
		}
	}
	if _, err := f.DynamicSymbols(); err == nil {
		return fmt.Errorf("%s has dynamic symbols; rebuild it with CGO_ENABLED=0", p)
	} else if !errors.Is(err, elf.ErrNoSymbols) {
		return fmt.Errorf("%s: read dynamic symbols: %w", p, err)
	}
	return nil
}

// layer is the uncompressed layer tar: the parent directories of the
// binary, /tmp, the binary, and the trees.
func layer(inImage string, bin []byte, trees []string) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dir := func(p string, mode int64) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: p + "/", Mode: mode, ModTime: epoch, Format: tar.FormatPAX})
	}
	rel := strings.TrimPrefix(inImage, "/")
	parts := strings.Split(path.Dir(rel), "/")
	for i := range parts {
		if parts[i] == "." {
			continue
		}
		if err := dir(strings.Join(parts[:i+1], "/"), 0o755); err != nil {
			return nil, err
		}
	}
	if err := dir("tmp", 0o1777); err != nil {
		return nil, err
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: rel, Mode: 0o755, Size: int64(len(bin)), ModTime: epoch, Format: tar.FormatPAX}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(bin); err != nil {
		return nil, err
	}
	seen := map[string]bool{rel: true, "tmp": true}
	for i := range parts {
		seen[strings.Join(parts[:i+1], "/")] = true
	}
	for _, t := range trees {
		if err := addTree(tw, t, seen); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// addTree writes the directories, regular files and symlinks under root
// into tw at their paths relative to root; names in seen are skipped.
func addTree(tw *tar.Writer, root string, seen map[string]bool) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		if seen[rel] {
			return nil
		}
		seen[rel] = true
		fi, err := d.Info()
		if err != nil {
			return err
		}
		h := &tar.Header{Name: rel, Mode: int64(fi.Mode().Perm()), ModTime: epoch, Format: tar.FormatPAX}
		switch {
		case fi.IsDir():
			h.Typeflag, h.Name = tar.TypeDir, rel+"/"
			return tw.WriteHeader(h)
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			h.Typeflag, h.Linkname = tar.TypeSymlink, target
			return tw.WriteHeader(h)
		case fi.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			h.Typeflag, h.Size = tar.TypeReg, int64(len(data))
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
			_, err = tw.Write(data)
			return err
		}
		return fmt.Errorf("%s: not a directory, regular file or symlink", p)
	})
}
