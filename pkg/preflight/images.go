package preflight

import (
	"fmt"

	"github.com/yurtadm/yurtadm/pkg/cri"
)

// CheckImagePull is kubeadm's name for the check that the node's images
// are there or can be pulled.
const CheckImagePull = "ImagePull"

// lateChecks are checks join runs after discovery (they need the cluster's
// answers) whose names --ignore-preflight-errors accepts too.
var lateChecks = []string{CheckImagePull}

// ImagePullCheck checks that every image is in the runtime's store and
// pulls a missing one through the CRI, as kubelet would. With pull false (a
// dry run) a missing image is an error without trying. The error says how
// to bring the image to a node that cannot pull.
func ImagePullCheck(imgs cri.Images, images []string, pull bool) Checker {
	return check{CheckImagePull, func() (_, errorList []error) {
		for _, img := range images {
			ok, err := imgs.Present(img)
			if err != nil {
				errorList = append(errorList, err)
				continue
			}
			if ok {
				continue
			}
			why := "not pulled (dry run)"
			if pull {
				if err = imgs.Pull(img); err == nil {
					continue
				}
				why = err.Error()
			}
			errorList = append(errorList, fmt.Errorf("image %s is not in the container runtime and could not be pulled (%s): "+
				"on a node that cannot pull, load it with --image-archive <file> (made on a connected machine by 'yurtadm images save')", img, why))
		}
		return nil, errorList
	}}
}
