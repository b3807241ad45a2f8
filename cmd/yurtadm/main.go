// Command yurtadm manages OpenYurt edge nodes. Installed or linked as
// yurtctl it is the cluster-side tool of the same name.
package main

import (
	"os"

	"github.com/yurtadm/yurtadm/pkg/cli"
	"github.com/yurtadm/yurtadm/pkg/cmdutil"
)

func main() {
	os.Exit(cli.Run(os.Args, cmdutil.StdIO()))
}
