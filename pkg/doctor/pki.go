package doctor

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/yurtadm/yurtadm/pkg/constants"
)

// readHostFile reads host path p below the root, resolving symlinks below
// the root too: a certificate store's *-current.pem is an absolute link.
func (d *doctor) readHostFile(p string) ([]byte, error) {
	for i := 0; i < 8; i++ {
		real := d.h.FS.Path(p)
		st, err := os.Lstat(real)
		if err != nil {
			return nil, err
		}
		if st.Mode()&os.ModeSymlink == 0 {
			return os.ReadFile(real)
		}
		target, err := os.Readlink(real)
		if err != nil {
			return nil, err
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(p), target)
		}
		p = target
	}
	return nil, fmt.Errorf("%s: too many levels of symbolic links", p)
}

// certFile is one certificate file yurthub uses.
type certFile struct {
	path string
	what string
	// renew says how this certificate gets renewed once it has expired.
	renew string
}

const resetFix = "stale files from an earlier join: run 'yurtadm reset', then 'yurtadm join' again"

// yurthubCertFiles lists the certificates yurthub uses in its bootstrap
// mode (yurthub v1.7.0: in kubeletcertificate mode its client certificate
// is kubelet's; in token mode it has its own, and its own copy of the CA).
func yurthubCertFiles(mode string) []certFile {
	server := certFile{constants.YurthubServerCert, "yurthub's serving certificate (10268)",
		"yurthub renews it itself while its client certificate is valid; otherwise restart yurthub after fixing the client certificate"}
	if mode == constants.YurthubBootstrapModeKCE {
		return []certFile{
			{constants.KubeletClientCert, "kubelet's client certificate, which yurthub uses (kubeletcertificate mode)",
				"kubelet renews it before it expires (rotateCertificates); once expired, the node must join again: 'yurtadm reset', then 'yurtadm join'"},
			server,
		}
	}
	return []certFile{
		{constants.YurthubClientCert, "yurthub's client certificate (token mode)",
			"yurthub renews it with its current certificate; once expired it needs a valid bootstrap token: 'kubeadm token create' on the control plane, then 'yurtadm token renew' here"},
		server,
	}
}

func (d *doctor) checkCertificates() Finding {
	const name = CheckYurthubCerts
	m, _ := d.yurthubManifest()
	mode := m.bootstrapMode()
	if m == nil {
		mode = constants.YurthubBootstrapModeKCE // yurtadm join's default
		if d.h.FS.Exists(constants.YurthubClientCert) {
			mode = constants.YurthubBootstrapModeToken
		}
	}
	now := d.dp.now()
	ev := []string{"bootstrap mode " + mode}

	caPEM, err := d.readHostFile(constants.CACertPath)
	var cas []*x509.Certificate
	switch {
	case errors.Is(err, fs.ErrPermission):
		return skip(name, "cannot read the certificates: run doctor as root", err.Error())
	case err != nil:
		ev = append(ev, fmt.Sprintf("the cluster CA %s cannot be read: %v", constants.CACertPath, err))
	default:
		if cas = parseCerts(caPEM); len(cas) == 0 {
			ev = append(ev, fmt.Sprintf("%s holds no certificate", constants.CACertPath))
		}
	}

	var fails, warns []string
	fixes := map[string]bool{}
	var fixList []string
	addFix := func(f string) {
		if !fixes[f] {
			fixes[f] = true
			fixList = append(fixList, f)
		}
	}
	for _, cf := range yurthubCertFiles(mode) {
		b, err := d.readHostFile(cf.path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			ev = append(ev, cf.path+": missing")
			fails = append(fails, filepath.Base(cf.path)+" is missing")
			addFix("yurthub has no certificate yet: see the yurthub-csr check (a Pending CSR needs yurt-manager to approve it)")
			continue
		case errors.Is(err, fs.ErrPermission):
			return skip(name, "cannot read the certificates: run doctor as root", err.Error())
		case err != nil:
			ev = append(ev, fmt.Sprintf("%s: %v", cf.path, err))
			fails = append(fails, filepath.Base(cf.path)+" cannot be read")
			continue
		}
		certs := parseCerts(b)
		if len(certs) == 0 {
			ev = append(ev, cf.path+": no certificate in it")
			fails = append(fails, filepath.Base(cf.path)+" holds no certificate")
			addFix(resetFix)
			continue
		}
		c := certs[0]
		left := c.NotAfter.Sub(now)
		days := int(left.Hours() / 24)
		remaining := fmt.Sprintf("%d days left", days)
		if left < 0 {
			remaining = fmt.Sprintf("expired %d days ago", -days)
		}
		line := fmt.Sprintf("%s: %s, subject %q, issuer %q, valid until %s (%s)",
			cf.path, cf.what, c.Subject.CommonName, c.Issuer.CommonName, c.NotAfter.UTC().Format(time.RFC3339), remaining)
		ev = append(ev, line)
		switch {
		case len(cas) > 0 && !signedBy(c, cas):
			fails = append(fails, fmt.Sprintf("%s is stale, from an earlier cluster: issued by %q, not by this cluster's CA %q",
				filepath.Base(cf.path), c.Issuer.CommonName, cas[0].Subject.CommonName))
			addFix(resetFix)
		case now.After(c.NotAfter):
			fails = append(fails, fmt.Sprintf("%s expired on %s", filepath.Base(cf.path), c.NotAfter.UTC().Format("2006-01-02")))
			addFix(cf.renew)
		case now.Before(c.NotBefore):
			warns = append(warns, fmt.Sprintf("%s is valid only from %s: the clock of this node or of the control plane is wrong",
				filepath.Base(cf.path), c.NotBefore.UTC().Format(time.RFC3339)))
			addFix("synchronise the clocks (NTP)")
		case left < c.NotAfter.Sub(c.NotBefore)/10:
			warns = append(warns, fmt.Sprintf("%s expires in %d days and has not been renewed (renewal normally happens at 70-90%% of its lifetime)",
				filepath.Base(cf.path), days))
			addFix(cf.renew)
		}
		if node := d.nodeName(); node != "" && strings.HasPrefix(c.Subject.CommonName, "system:node:") &&
			c.Subject.CommonName != "system:node:"+node {
			fails = append(fails, fmt.Sprintf("%s belongs to %q, but this node is %q", filepath.Base(cf.path), c.Subject.CommonName, node))
			addFix(resetFix)
		}
	}
	if mode == constants.YurthubBootstrapModeToken && len(cas) > 0 {
		if b, err := d.readHostFile(constants.YurthubCACert); err == nil && !bytes.Equal(bytes.TrimSpace(b), bytes.TrimSpace(caPEM)) {
			if own := parseCerts(b); len(own) == 0 || !own[0].Equal(cas[0]) {
				fails = append(fails, fmt.Sprintf("%s is not this cluster's CA: it is stale, from an earlier cluster", constants.YurthubCACert))
				addFix(resetFix)
			}
		}
	}
	if mode == constants.YurthubBootstrapModeKCE {
		// yurthub v1.7.0 in this mode refuses to start without these two.
		for _, p := range []string{constants.KubeletKubeconfig, constants.CACertPath} {
			if !d.h.FS.Exists(p) {
				fails = append(fails, p+" is missing, which yurthub needs in kubeletcertificate mode")
				addFix("kubelet writes " + constants.KubeletKubeconfig + " when it bootstraps and join writes " + constants.CACertPath +
					": if they were removed, run 'yurtadm reset', then 'yurtadm join' again")
			}
		}
	}
	fix := strings.Join(fixList, "; ")
	switch {
	case len(fails) > 0:
		return fail(name, strings.Join(fails, "; "), fix, ev...)
	case len(warns) > 0:
		return warn(name, strings.Join(warns, "; "), fix, ev...)
	case len(cas) == 0:
		return warn(name, "yurthub's certificates are valid, but the cluster CA could not be read to check their issuer",
			"restore "+constants.CACertPath+" (yurtadm join writes it from cluster-info)", ev...)
	}
	return ok(name, "yurthub's certificates are present, valid and issued by this cluster's CA", ev...)
}

// signedBy reports whether one of cas signed c.
func signedBy(c *x509.Certificate, cas []*x509.Certificate) bool {
	for _, ca := range cas {
		if c.CheckSignatureFrom(ca) == nil {
			return true
		}
	}
	return false
}
