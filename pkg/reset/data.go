package reset

import (
	"context"
	"errors"

	"github.com/yurtadm/yurtadm/pkg/cmdutil"
	"github.com/yurtadm/yurtadm/pkg/cri"
	"github.com/yurtadm/yurtadm/pkg/host"
	"github.com/yurtadm/yurtadm/pkg/joinstate"
)

// ResetData is what the reset phases need. Phases ask it instead of
// building anything themselves, so a test can run any phase inside a temp
// root with fakes.
type ResetData interface {
	// Host is the machine: files below its root, commands, init system.
	Host() *host.Host
	// DryRun reports whether to describe the changes instead of making them.
	DryRun() bool
	// Confirm makes sure the host may be changed: reset runs as root and the
	// user agreed (--force, or yes at the prompt). It asks at most once; a
	// dry run needs neither.
	Confirm() error
	// CRIEndpoint is the container runtime to clean: --cri-socket, or the one
	// socket found on the host. It is empty when no runtime socket exists.
	CRIEndpoint() (string, error)
	// Unmounter unmounts kubelet's mounts.
	Unmounter() Unmounter
	// JoinState is what yurtadm join recorded, read before anything was
	// removed; nil when the node has no state file.
	JoinState() (*joinstate.State, error)
	// Report collects the outcome of every step.
	Report() *report
	// Context is cancelled when the user interrupts reset.
	Context() context.Context
	// IO is where progress lines go.
	IO() cmdutil.IOStreams
}

// resetData is the ResetData of one yurtadm reset run.
type resetData struct {
	ctx       context.Context
	streams   cmdutil.IOStreams
	opts      *options
	host      *host.Host
	unmounter Unmounter
	confirm   func(ctx context.Context, s cmdutil.IOStreams, question, forceFlag string) error
	geteuid   func() int

	state    *joinstate.State
	stateErr error

	report *report

	confirmed  bool
	confirmErr error
}

var _ ResetData = &resetData{}

func (d *resetData) Host() *host.Host                     { return d.host }
func (d *resetData) DryRun() bool                         { return d.opts.dryRun }
func (d *resetData) Unmounter() Unmounter                 { return d.unmounter }
func (d *resetData) JoinState() (*joinstate.State, error) { return d.state, d.stateErr }
func (d *resetData) Report() *report                      { return d.report }
func (d *resetData) Context() context.Context             { return d.ctx }
func (d *resetData) IO() cmdutil.IOStreams                { return d.streams }

// confirmQuestion is asked before reset changes anything.
const confirmQuestion = "[reset] WARNING: changes will be made to this host. Proceed?"

func (d *resetData) Confirm() error {
	if d.opts.dryRun || d.confirmed {
		return nil
	}
	if d.confirmErr != nil {
		return d.confirmErr
	}
	if d.geteuid() != 0 {
		d.confirmErr = &cmdutil.Error{Code: cmdutil.ExitPreflight,
			Err:  errors.New("yurtadm reset changes system files and must run as root"),
			Hint: "run it with sudo, or pass --" + flagDryRun + " to see what it would do"}
		return d.confirmErr
	}
	if !d.opts.force {
		if err := d.confirm(d.ctx, d.streams, confirmQuestion, flagForce); err != nil {
			d.confirmErr = err
			return err
		}
	}
	d.confirmed = true
	return nil
}

func (d *resetData) CRIEndpoint() (string, error) {
	if d.opts.criSocket != "" {
		return cri.Endpoint(d.opts.criSocket), nil
	}
	for _, s := range cri.Known {
		if d.host.FS.Exists(s) {
			return cri.Detect(d.host.FS)
		}
	}
	return "", nil
}
