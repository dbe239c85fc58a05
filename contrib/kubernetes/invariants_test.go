package kubernetes_test

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// TestManifests decodes every manifest in this directory strictly and
// checks the invariants against the ConfigMap's configuration.
func TestManifests(t *testing.T) {
	m, err := loadManifests(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range m.problems() {
		t.Error(p)
	}
}

// TestBrokenManifests breaks each invariant in turn, in memory, and wants
// problems() to name it: no check here passes whatever the manifests say.
func TestBrokenManifests(t *testing.T) {
	ds := func(m *manifests) *appsv1.DaemonSet { return m.daemonSets[0] }
	pod := func(m *manifests) *corev1.PodSpec { return &ds(m).Spec.Template.Spec }
	daemon := func(m *manifests) *corev1.Container { return findContainer(pod(m).Containers, daemonContainer) }
	initc := func(m *manifests, name string) *corev1.Container { return findContainer(pod(m).InitContainers, name) }
	volume := func(m *manifests, name string) *corev1.Volume {
		for i := range pod(m).Volumes {
			if pod(m).Volumes[i].Name == name {
				return &pod(m).Volumes[i]
			}
		}
		t.Fatalf("no volume %s", name)
		return nil
	}
	setConfig := func(m *manifests, old, new string) {
		cm := m.configMaps[0]
		for k, v := range cm.Data {
			if !strings.Contains(v, old) {
				t.Fatalf("configmap %s has no %q", k, old)
			}
			cm.Data[k] = strings.Replace(v, old, new, 1)
		}
	}
	ptr := func(b bool) *bool { return &b }
	int64p := func(i int64) *int64 { return &i }

	tests := []struct {
		name   string
		break_ func(m *manifests)
		want   string
	}{
		{"grace period at the drain time", func(m *manifests) { pod(m).TerminationGracePeriodSeconds = int64p(10) }, "terminationGracePeriodSeconds"},
		{"grace period without room to stop", func(m *manifests) { pod(m).TerminationGracePeriodSeconds = int64p(39) }, "terminationGracePeriodSeconds"},
		{"grace period unset", func(m *manifests) { pod(m).TerminationGracePeriodSeconds = nil }, "terminationGracePeriodSeconds"},
		{"a VIP's longer drain time", func(m *manifests) {
			setConfig(m, "checks = [\"web\", \"web-port\"]", "checks = [\"web\", \"web-port\"]\ndrain_time = \"60s\"")
		}, "terminationGracePeriodSeconds"},
		{"graceful restart without the 10 s", func(m *manifests) {
			pod(m).TerminationGracePeriodSeconds = int64p(40)
			setConfig(m, "# graceful_restart = true", "graceful_restart = true")
		}, "terminationGracePeriodSeconds"},
		{"no host network", func(m *manifests) { pod(m).HostNetwork = false }, "hostNetwork"},
		{"host PID", func(m *manifests) { pod(m).HostPID = true }, "hostPID"},
		{"maxUnavailable 2", func(m *manifests) {
			v := intstr.FromInt32(2)
			ds(m).Spec.UpdateStrategy.RollingUpdate.MaxUnavailable = &v
		}, "maxUnavailable"},
		{"maxUnavailable 10%", func(m *manifests) {
			v := intstr.FromString("10%")
			ds(m).Spec.UpdateStrategy.RollingUpdate.MaxUnavailable = &v
		}, "maxUnavailable"},
		{"maxSurge 1", func(m *manifests) {
			v := intstr.FromInt32(1)
			ds(m).Spec.UpdateStrategy.RollingUpdate.MaxSurge = &v
		}, "maxSurge"},
		{"OnDelete", func(m *manifests) {
			ds(m).Spec.UpdateStrategy = appsv1.DaemonSetUpdateStrategy{Type: appsv1.OnDeleteDaemonSetStrategyType}
		}, "RollingUpdate"},
		{"minReadySeconds 0", func(m *manifests) { ds(m).Spec.MinReadySeconds = 0 }, "minReadySeconds"},
		{"minReadySeconds under the startup delay", func(m *manifests) {
			setConfig(m, "drain_time = \"10s\"", "drain_time = \"10s\"\nstartup_delay = \"60s\"")
		}, "minReadySeconds"},
		{"selector off the template", func(m *manifests) { ds(m).Spec.Template.Labels = map[string]string{"x": "y"} }, "selector"},
		{"probe port", func(m *manifests) { daemon(m).ReadinessProbe.GRPC.Port = 9481 }, "readiness probe port"},
		{"tcp_listen port", func(m *manifests) { setConfig(m, "@NODE_IP@:9480", "@NODE_IP@:9481") }, "readiness probe port"},
		{"tcp_listen on every address", func(m *manifests) { setConfig(m, "tcp_listen = \"@NODE_IP@:9480\"", "tcp_listen = \":9480\"") }, "tcp_listen host"},
		{"no tcp_listen", func(m *manifests) { setConfig(m, "tcp_listen = \"@NODE_IP@:9480\"", "") }, "needs a TCP listener"},
		{"an HTTP probe", func(m *manifests) {
			daemon(m).ReadinessProbe.ProbeHandler = corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/"}}
		}, "no grpc readinessProbe"},
		{"no readiness probe", func(m *manifests) { daemon(m).ReadinessProbe = nil }, "no grpc readinessProbe"},
		{"readiness is liveness", func(m *manifests) { s := ""; daemon(m).ReadinessProbe.GRPC.Service = &s }, "readiness probe service"},
		{"readiness service unset", func(m *manifests) { daemon(m).ReadinessProbe.GRPC.Service = nil }, "readiness probe service"},
		{"liveness is readiness", func(m *manifests) { s := "ready"; daemon(m).LivenessProbe.GRPC.Service = &s }, "liveness probe service"},
		{"liveness port", func(m *manifests) { daemon(m).LivenessProbe.GRPC.Port = 9479 }, "liveness probe port"},
		{"liveness impatient", func(m *manifests) { daemon(m).LivenessProbe.PeriodSeconds = 5 }, "liveness probe window"},
		{"liveness by defaults too short", func(m *manifests) {
			daemon(m).LivenessProbe.PeriodSeconds, daemon(m).LivenessProbe.FailureThreshold = 0, 1
		}, "liveness probe window"},
		{"liveness over HTTP", func(m *manifests) {
			daemon(m).LivenessProbe.ProbeHandler = corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{}}
		}, "no grpc livenessProbe"},
		{"api port", func(m *manifests) { daemon(m).Ports[1].ContainerPort = 9999 }, "port api"},
		{"metrics port", func(m *manifests) { setConfig(m, "@NODE_IP@:9479", "@NODE_IP@:9400") }, "port metrics"},
		{"bgp port", func(m *manifests) { setConfig(m, "listen_port = 179", "listen_port = 1179") }, "port bgp"},
		{"bgp port without a listener", func(m *manifests) { setConfig(m, "listen_port = 179", "listen_port = 0") }, "port bgp declared"},
		{"hostPath elsewhere", func(m *manifests) { volume(m, "state").HostPath.Path = "/var/run/anycastd" }, "hostPath"},
		{"state_dir elsewhere", func(m *manifests) {
			setConfig(m, "state_dir = \"/run/anycastd\"", "state_dir = \"/var/lib/anycastd\"")
		}, "not on a hostPath volume"},
		{"state an emptyDir", func(m *manifests) {
			volume(m, "state").VolumeSource = corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}
		}, "not on a hostPath volume"},
		{"hostPath type", func(m *manifests) { t := corev1.HostPathDirectory; volume(m, "state").HostPath.Type = &t }, "DirectoryOrCreate"},
		{"state read-only", func(m *manifests) { daemon(m).VolumeMounts[1].ReadOnly = true }, "not writable"},
		{"socket off the state volume", func(m *manifests) {
			setConfig(m, "unix:///run/anycastd/api.sock", "unix:///var/run/api.sock")
		}, "API socket"},
		{"capability SYS_ADMIN", func(m *manifests) {
			c := daemon(m).SecurityContext.Capabilities
			c.Add = append(c.Add, "SYS_ADMIN")
		}, "capabilities.add"},
		{"no NET_BIND_SERVICE", func(m *manifests) { daemon(m).SecurityContext.Capabilities.Add = []corev1.Capability{"NET_ADMIN"} }, "capabilities.add"},
		{"drop not ALL", func(m *manifests) { daemon(m).SecurityContext.Capabilities.Drop = []corev1.Capability{"NET_RAW"} }, "capabilities.drop"},
		{"capability in an init container", func(m *manifests) {
			initc(m, "config").SecurityContext.Capabilities.Add = []corev1.Capability{"NET_ADMIN"}
		}, "container config: capabilities.add"},
		{"writable root", func(m *manifests) { daemon(m).SecurityContext.ReadOnlyRootFilesystem = ptr(false) }, "readOnlyRootFilesystem"},
		{"privilege escalation", func(m *manifests) { daemon(m).SecurityContext.AllowPrivilegeEscalation = nil }, "allowPrivilegeEscalation"},
		{"privileged", func(m *manifests) { daemon(m).SecurityContext.Privileged = ptr(true) }, "privileged"},
		{"init container as root", func(m *manifests) { initc(m, "check-config").SecurityContext.RunAsNonRoot = nil }, "runAsNonRoot"},
		{"no seccomp", func(m *manifests) { pod(m).SecurityContext = nil }, "seccompProfile"},
		{"token mounted", func(m *manifests) { pod(m).AutomountServiceAccountToken = nil }, "automountServiceAccountToken"},
		{"service account token", func(m *manifests) { m.serviceAccounts[0].AutomountServiceAccountToken = ptr(true) }, "serviceaccount"},
		{"service account name", func(m *manifests) { pod(m).ServiceAccountName = "default" }, "serviceAccountName"},
		{"namespace level", func(m *manifests) {
			m.namespaces[0].Labels["pod-security.kubernetes.io/enforce"] = "baseline"
		}, "pod-security"},
		{"other namespace", func(m *manifests) { m.configMaps[0].Namespace = "default" }, "namespace"},
		{"image latest", func(m *manifests) { daemon(m).Image = "registry.example.com/anycastd/anycastd:latest" }, "must name a tag"},
		{"image untagged", func(m *manifests) { initc(m, "config").Image = "busybox" }, "must name a tag"},
		{"image on a registry port, untagged", func(m *manifests) { daemon(m).Image = "registry.example.com:5000/anycastd" }, "must name a tag"},
		{"pull Always", func(m *manifests) { daemon(m).ImagePullPolicy = corev1.PullAlways }, "imagePullPolicy"},
		{"checked by another image", func(m *manifests) {
			initc(m, "check-config").Image = "registry.example.com/anycastd/anycastd:0.0.9-static"
		}, "check-config: image"},
		{"no check-config", func(m *manifests) { pod(m).InitContainers = pod(m).InitContainers[:1] }, "no init container check-config"},
		{"router_id fixed", func(m *manifests) { setConfig(m, "router_id = \"@NODE_IP@\"", "router_id = \"198.18.0.10\"") }, "router_id"},
		{"bad config", func(m *manifests) { setConfig(m, "asn = 65001", "asn = 23456") }, "does not load"},
		{"node IP from the pod's name", func(m *manifests) {
			initc(m, "config").Env[0].ValueFrom.FieldRef.FieldPath = "metadata.name"
		}, "status.hostIP"},
		{"rendered elsewhere", func(m *manifests) { daemon(m).Args = []string{"-config", "/etc/anycastd/other.toml"} }, "-config"},
		{"config writable", func(m *manifests) { daemon(m).VolumeMounts[0].ReadOnly = false }, "readOnly"},
		{"template from another ConfigMap", func(m *manifests) { volume(m, "template").ConfigMap.Name = "other" }, "not on a volume of ConfigMap"},
		{"renderer gone", func(m *manifests) { initc(m, "config").Command = []string{"/bin/true"} }, "no line"},
		{"renderer last", func(m *manifests) {
			ic := pod(m).InitContainers
			ic[0], ic[1] = ic[1], ic[0]
		}, "must run first"},
		{"two containers", func(m *manifests) {
			pod(m).Containers = append(pod(m).Containers, corev1.Container{Name: "sidecar"})
		}, "exactly one container"},
		{"a second DaemonSet", func(m *manifests) { m.daemonSets = append(m.daemonSets, m.daemonSets[0]) }, "want one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := loadManifests(".")
			if err != nil {
				t.Fatal(err)
			}
			tt.break_(m)
			ps := m.problems()
			for _, p := range ps {
				if strings.Contains(p, tt.want) {
					return
				}
			}
			t.Errorf("no problem mentions %q; problems: %q", tt.want, ps)
		})
	}
}

// TestSplitAndStrictDecoding: documents split only at "---" lines (not at
// the same text inside a block scalar), comment-only documents are
// dropped, and decoding refuses unknown fields, duplicate keys and kinds
// the test does not know.
func TestSplitAndStrictDecoding(t *testing.T) {
	stream := `# a leading comment
---
apiVersion: v1
kind: ConfigMap
metadata: {name: a, namespace: anycastd}
data:
  anycastd.toml: |
    # ---
    ---
    x = 1
--- # the next one
# only a comment
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: b}
`
	docs, err := splitDocuments([]byte(stream))
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 2 {
		t.Fatalf("split into %d documents, want 2: %q", len(docs), docs)
	}
	m := &manifests{}
	for _, d := range docs {
		if err := m.add(d); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := m.configMaps[0].Data["anycastd.toml"], "# ---\n---\nx = 1\n"; got != want {
		t.Errorf("block scalar %q, want %q", got, want)
	}

	for _, bad := range []struct{ name, doc, want string }{
		{"unknown field", "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: b}\nautomountToken: false\n", "unknown field"},
		{"misplaced field", "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: d}\nspec:\n  hostNetwork: true\n", "unknown field"},
		{"duplicate key", "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: b}\nmetadata: {name: c}\n", "already set"},
		{"unknown kind", "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n", "not a kind"},
		{"wrong type", "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: d}\nspec: {minReadySeconds: soon}\n", "minReadySeconds"},
	} {
		if err := (&manifests{}).add([]byte(bad.doc)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: error %v, want one mentioning %q", bad.name, err, bad.want)
		}
	}
	if _, err := splitDocuments([]byte("a: 1\n--- b: 2\n")); err == nil {
		t.Error("a separator followed by content: no error")
	}
}
