// Package cptest holds what the tests of the control-plane installer and
// of convert share: a fake dynamic client that plays the API server's CRD
// handling, and charts' output.
package cptest

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	k8stesting "k8s.io/client-go/testing"
)

// NewDynamic is a fake dynamic client for CRDs, NodePools and Raven
// Gateways that marks a new CRD Established, as the API server does.
func NewDynamic() *dynamicfake.FakeDynamicClient {
	dc := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}: "CustomResourceDefinitionList",
		{Group: "apps.openyurt.io", Version: "v1beta2", Resource: "nodepools"}:                "NodePoolList",
		{Group: "raven.openyurt.io", Version: "v1beta1", Resource: "gateways"}:                "GatewayList",
	})
	dc.PrependReactor("create", "customresourcedefinitions", func(a k8stesting.Action) (bool, runtime.Object, error) {
		u := a.(k8stesting.CreateAction).GetObject().(*unstructured.Unstructured)
		_ = unstructured.SetNestedSlice(u.Object, []any{map[string]any{"type": "Established", "status": "True"}}, "status", "conditions")
		return false, nil, nil
	})
	return dc
}

// ChartCRDs is what `helm show crds` prints of a yurt-manager chart.
const ChartCRDs = `# Source: yurt-manager/crds/a.yaml
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: nodepools.apps.openyurt.io
spec:
  group: apps.openyurt.io
  names: {kind: NodePool, plural: nodepools}
  scope: Cluster
  versions:
  - {name: v1beta2, served: true, storage: true, schema: {openAPIV3Schema: {type: object}}}
  conversion:
    strategy: Webhook
    webhook:
      conversionReviewVersions: [v1beta1]
      clientConfig: {service: {namespace: kube-system, name: yurt-manager-webhook-service, path: /convert}}

apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gateways.raven.openyurt.io
spec:
  group: raven.openyurt.io
  names: {kind: Gateway, plural: gateways}
  scope: Cluster
  versions:
  - {name: v1beta1, served: true, storage: true}
`

// RenderedHub is a rendered yurthub chart: yurt-hub-cfg and the edge
// YurtStaticSet.
const RenderedHub = `---
# Source: yurthub/templates/yurthub-cfg.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: yurt-hub-cfg
data:
  cache_agents: ""
---
apiVersion: apps.openyurt.io/v1alpha1
kind: YurtStaticSet
metadata:
  name: yurt-hub
spec:
  staticPodManifest: yurthub
  template:
    spec:
      containers:
        - name: yurt-hub
          image: openyurt/yurthub:v1.7.0
          command:
            - yurthub
            - --v=2
            - --server-addr=https://10.0.0.1:6443
            - --bootstrap-file=/var/lib/yurthub/bootstrap-hub.conf
          volumeMounts:
            - name: hub-dir
              mountPath: /var/lib/yurthub
      volumes:
        - name: hub-dir
          hostPath: {path: /var/lib/yurthub, type: DirectoryOrCreate}
`
