// Command ycluster drives the multi-node harness (test/cluster) by hand:
//
//	ycluster up [--config FILE]   bring a cluster up (default: cp, two edge nodes, a cloud node)
//	ycluster down                 take it down, leaving the machine as it was
//	ycluster status               nodes, pools, yurthub health per node, workloads
//	ycluster workloads            a web workload (Deployment web-NODE) on every worker
//	ycluster exec NODE CMD...     run CMD inside NODE (all its namespaces)
//	ycluster partition NODE       cut NODE off from the cloud (the cloud keeps running)
//	ycluster heal NODE            undo partition
//	ycluster poweroff NODE        shut NODE down (--cut: pull the plug)
//	ycluster boot NODE            boot NODE again
//
// hack/cluster.sh builds it and sets what it needs (YURTADM_TOOLS_BIN,
// YURTADM_NODE_ROOTFS, --yurtadm). Run as root.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/yurtadm/yurtadm/test/cluster"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "ycluster:", err)
		os.Exit(1)
	}
}

func usage() error {
	return fmt.Errorf("usage: ycluster up [--config FILE] [--yurtadm PATH] | down | status | workloads | exec NODE CMD... | partition NODE | heal NODE | poweroff [--cut] NODE | boot NODE\n"+
		"  every command but up takes --name NAME first: the cluster of that name (default %q; the e2e convert package's is kadm)", cluster.DefaultName)
}

// takeName removes a leading "--name NAME" (or --name=NAME) after the
// command and returns the name, DefaultName without it.
func takeName(args []string) (string, []string, error) {
	if len(args) > 1 && strings.HasPrefix(args[1], "--name=") {
		return strings.TrimPrefix(args[1], "--name="), append([]string{args[0]}, args[2:]...), nil
	}
	if len(args) > 1 && args[1] == "--name" {
		if len(args) < 3 || args[2] == "" {
			return "", nil, fmt.Errorf("--name needs a cluster name")
		}
		return args[2], append([]string{args[0]}, args[3:]...), nil
	}
	return cluster.DefaultName, args, nil
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usage()
	}
	switch args[0] {
	case "up":
		fs := flag.NewFlagSet("up", flag.ContinueOnError)
		cfgPath := fs.String("config", "", "cluster description (YAML); default: cp, edge1 (hangzhou), edge2 (shanghai), cloud1")
		yurtadm := fs.String("yurtadm", "", "the yurtadm binary the nodes get")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		cfg := cluster.Default()
		if *cfgPath != "" {
			var err error
			if cfg, err = cluster.Load(*cfgPath); err != nil {
				return err
			}
		}
		c, err := cluster.New(cfg, os.Stderr)
		if err != nil {
			return err
		}
		if err := c.SetYurtadm(*yurtadm); err != nil {
			return err
		}
		return c.Create(ctx)
	}
	name, args, err := takeName(args)
	if err != nil {
		return err
	}
	if args[0] == "down" {
		c, err := cluster.AttachNamed(name, os.Stderr)
		if err != nil {
			// Nothing recorded: clean by the default description's names
			// (and the nodes found in the cluster's Dir).
			cfg := cluster.Default()
			cfg.Name = name
			if c, err = cluster.New(cfg, os.Stderr); err != nil {
				return err
			}
		}
		if err := c.Delete(ctx); err != nil {
			return err
		}
		if left := c.Leftovers(); len(left) > 0 {
			return fmt.Errorf("left behind: %s", strings.Join(left, "; "))
		}
		fmt.Printf("cluster %s down; nothing left behind\n", c.Config.Name)
		return nil
	}
	c, err := cluster.AttachNamed(name, os.Stderr)
	if err != nil {
		return err
	}
	switch args[0] {
	case "status":
		return status(ctx, c)
	case "workloads":
		for _, n := range c.Nodes()[1:] {
			if err := c.DeployWeb(ctx, "web-"+n.Name, n.Name); err != nil {
				return err
			}
			fmt.Printf("web-%s: Running on %s\n", n.Name, n.Name)
		}
		return nil
	case "exec":
		if len(args) < 3 {
			return usage()
		}
		n, err := c.Node(args[1])
		if err != nil {
			return err
		}
		cmd, err := n.Command(ctx, args[2:]...)
		if err != nil {
			return err
		}
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			if ee, ok := err.(*exec.ExitError); ok {
				os.Exit(ee.ExitCode())
			}
			return err
		}
		return nil
	case "partition", "heal", "poweroff", "boot":
		cut := len(args) > 2 && args[1] == "--cut"
		if cut {
			args = append(args[:1], args[2:]...)
		}
		if len(args) != 2 {
			return usage()
		}
		n, err := c.Node(args[1])
		if err != nil {
			return err
		}
		switch args[0] {
		case "partition":
			err = n.Partition(ctx)
		case "heal":
			err = n.Heal(ctx)
		case "poweroff":
			if cut {
				err = n.PowerCut()
			} else {
				err = n.Poweroff(ctx, 30*time.Second)
			}
		case "boot":
			err = n.Boot(ctx)
		}
		if err == nil {
			fmt.Printf("%s: %s done\n", n.Name, args[0])
		}
		return err
	}
	return usage()
}

// status prints the nodes as the cluster and the nodes themselves see them.
func status(ctx context.Context, c *cluster.Cluster) error {
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NODE\tROLE\tIP\tRUNNING\tREADY\tPOOL\tAUTONOMY\tYURTHUB\tPARTITIONED")
	for _, n := range c.Nodes() {
		running, ready, pool, autonomy, hub, cut := "no", "-", "-", "-", "-", "-"
		if n.PID1() > 0 {
			running = fmt.Sprintf("pid %d", n.PID1())
			if n.Partitioned(ctx) {
				cut = "yes"
			} else {
				cut = "no"
			}
			if n.Role == cluster.RoleEdge || n.Role == cluster.RoleCloud {
				if out, err := n.Output(ctx, "ynode-web", "-get", "http://127.0.0.1:10267/v1/healthz"); err == nil {
					hub = strings.TrimSpace(out)
				} else {
					hub = "not answering"
				}
			}
		}
		if c.Client != nil {
			if node, err := c.Client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{}); err == nil {
				ready = fmt.Sprint(cluster.NodeReady(node))
				if p := node.Labels["apps.openyurt.io/nodepool"]; p != "" {
					pool = p
				}
				if a, ok := node.Annotations["node.openyurt.io/autonomy-duration"]; ok {
					autonomy = a
					if a == "0" {
						autonomy = "for ever"
					}
				}
			}
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.Name, n.Role, n.IP, running, ready, pool, autonomy, hub, cut)
	}
	w.Flush()
	if c.Client != nil {
		pods, err := c.Client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
		if err == nil && len(pods.Items) > 0 {
			fmt.Println()
			w = tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "WORKLOAD POD\tNODE\tREADY\tIP")
			for _, p := range pods.Items {
				fmt.Fprintf(w, "%s\t%s\t%v\t%s\n", p.Name, p.Spec.NodeName, cluster.PodReady(&p), p.Status.PodIP)
			}
			w.Flush()
		}
	}
	k := c.Kubeconfig()
	fmt.Printf(`
kubeconfig:       export KUBECONFIG=%s
enter a node:     hack/cluster.sh exec edge1 bash     (or nsenter -t <pid> -a bash)
inside a node:    systemctl status kubelet; crictl ps; ynode-web -get http://127.0.0.1:10267/v1/healthz
cut one off:      hack/cluster.sh partition edge1     (the cloud keeps running; the node goes NotReady,
                  its pods keep running inside: hack/cluster.sh exec edge1 crictl ps)
heal it:          hack/cluster.sh heal edge1
power-cycle it:   hack/cluster.sh poweroff edge1; hack/cluster.sh boot edge1
tear down:        make quickstart-down                (nothing is left on the machine)
`, k)
	return nil
}
