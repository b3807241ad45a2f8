// Package templates holds the files yurtadm writes on a node, embedded in the
// binary and rendered from typed data. Each has a golden test that also
// parses the result back into its real type.
package templates

import (
	"bytes"
	"embed"
	"fmt"
	"text/template"
)

//go:embed *.tmpl
var files embed.FS

var parsed = template.Must(template.New("").Option("missingkey=error").ParseFS(files, "*.tmpl"))

// Yurthub is the data of the yurthub static pod manifest.
type Yurthub struct {
	Image         string
	Namespace     string
	ServerAddr    string // comma list of https API server URLs
	NodePoolName  string
	WorkingMode   string // edge or cloud
	BootstrapMode string // kubeletcertificate or token
	Verbosity     int
	ExtraArgs     []string // "--flag=value", each a flag yurthub v1.7.0 accepts
}

// KubeletDropIn is the data of the kubelet systemd drop-in.
type KubeletDropIn struct {
	KubeletPath string
}

// RenderYurthub renders the yurthub static pod manifest.
func RenderYurthub(d Yurthub) ([]byte, error) {
	for name, v := range map[string]string{"Image": d.Image, "Namespace": d.Namespace, "ServerAddr": d.ServerAddr,
		"NodePoolName": d.NodePoolName, "WorkingMode": d.WorkingMode, "BootstrapMode": d.BootstrapMode} {
		if v == "" {
			return nil, fmt.Errorf("render yurthub manifest: %s is empty", name)
		}
	}
	return render("yurthub.yaml.tmpl", d)
}

// RenderKubeletDropIn renders kubeadm's kubelet drop-in 10-kubeadm.conf.
func RenderKubeletDropIn(d KubeletDropIn) ([]byte, error) {
	if d.KubeletPath == "" {
		return nil, fmt.Errorf("render kubelet drop-in: KubeletPath is empty")
	}
	return render("10-kubeadm.conf.tmpl", d)
}

func render(name string, data any) ([]byte, error) {
	var b bytes.Buffer
	if err := parsed.ExecuteTemplate(&b, name, data); err != nil {
		return nil, fmt.Errorf("render %s: %w", name, err)
	}
	return b.Bytes(), nil
}
