// Package kubernetes_test checks the manifests in this directory: each
// decodes strictly into its Kubernetes type, and together with the example
// configuration in the ConfigMap (rendered as the init container renders
// it, then parsed by anycastd's own config package) they keep the
// invariants that make anycastd run safely as a DaemonSet. No cluster is
// needed.
package kubernetes_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	pb "github.com/anycastd/anycastd/api/anycastd/v1"
	"github.com/anycastd/anycastd/apiserver"
	"github.com/anycastd/anycastd/config"
)

// What anycastd's stop after SIGTERM takes besides the drain time (README
// "Build and run", announcer/shutdown.go, internal/daemon/notify.go):
// stopAllowance after the drain, as the systemd unit is given it (the
// flush of the withdrawals, at most 2 s, stopping BGP and removing the VIP
// addresses: about 12 s for 10,000 IPv6 addresses); with graceful_restart
// at most heldFlushTimeout more for sessions still held since the start.
const (
	stopAllowance    = 30 * time.Second
	heldFlushTimeout = 10 * time.Second
)

// Probes: the grpc.health.v1 service names anycastd answers (apiserver
// SetHealth): readiness "ready" (a BGP session established, not
// stopping); liveness "" or the API's own name (the announcer loop beats).
// A liveness probe must tolerate the loop being busy for livenessWindow
// (failureThreshold × periodSeconds), e.g. with a large reload.
var (
	readyService   = apiserver.ReadyService
	liveServices   = []string{"", pb.AnycastdService_ServiceDesc.ServiceName}
	livenessWindow = 30 * time.Second
)

// The container that runs anycastd and the names of its ports.
const (
	daemonContainer = "anycastd"
	apiPortName     = "api"
	metricsPortName = "metrics"
	bgpPortName     = "bgp"
)

// Node IPs the template is rendered with, as the init container does with
// the node's status.hostIP: two, to show each node gets its own router ID.
var nodeIPs = []string{"198.18.0.10", "198.18.0.11"}

// manifests is everything the *.yaml files in a directory hold.
type manifests struct {
	namespaces      []*corev1.Namespace
	serviceAccounts []*corev1.ServiceAccount
	configMaps      []*corev1.ConfigMap
	daemonSets      []*appsv1.DaemonSet
}

// loadManifests decodes every document of every *.yaml file in dir.
func loadManifests(dir string) (*manifests, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no *.yaml files in %s", dir)
	}
	m := &manifests{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		docs, err := splitDocuments(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		for i, doc := range docs {
			if err := m.add(doc); err != nil {
				return nil, fmt.Errorf("%s: document %d: %w", f, i+1, err)
			}
		}
	}
	return m, nil
}

// splitDocuments splits a YAML stream at its "---" lines (as kubectl does:
// a line starting with "---", followed by nothing but a comment; the same
// text indented in a block scalar is content) and drops the documents that
// are empty or only comments.
func splitDocuments(data []byte) ([][]byte, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		j, err := yaml.YAMLToJSON(doc)
		if err != nil {
			return nil, err
		}
		if s := string(bytes.TrimSpace(j)); s == "null" || s == "" {
			continue
		}
		docs = append(docs, doc)
	}
}

// add decodes one document strictly (unknown or duplicate fields are
// errors) into the type its apiVersion and kind name; other kinds are
// errors, so that a new kind gets checks before it ships.
func (m *manifests) add(doc []byte) error {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return err
	}
	strict := func(obj any) error { return yaml.UnmarshalStrict(doc, obj) }
	switch tm.APIVersion + " " + tm.Kind {
	case "v1 Namespace":
		o := &corev1.Namespace{}
		m.namespaces = append(m.namespaces, o)
		return strict(o)
	case "v1 ServiceAccount":
		o := &corev1.ServiceAccount{}
		m.serviceAccounts = append(m.serviceAccounts, o)
		return strict(o)
	case "v1 ConfigMap":
		o := &corev1.ConfigMap{}
		m.configMaps = append(m.configMaps, o)
		return strict(o)
	case "apps/v1 DaemonSet":
		o := &appsv1.DaemonSet{}
		m.daemonSets = append(m.daemonSets, o)
		return strict(o)
	}
	return fmt.Errorf("apiVersion %q kind %q: not a kind this test knows", tm.APIVersion, tm.Kind)
}

// problems lists every way m breaks an invariant; none when it keeps them.
func (m *manifests) problems() []string {
	var p problemList
	if len(m.namespaces) != 1 || len(m.serviceAccounts) != 1 || len(m.configMaps) != 1 || len(m.daemonSets) != 1 {
		p.add("want one Namespace, ServiceAccount, ConfigMap and DaemonSet; have %d, %d, %d, %d",
			len(m.namespaces), len(m.serviceAccounts), len(m.configMaps), len(m.daemonSets))
		return p
	}
	ns, sa, cm, ds := m.namespaces[0], m.serviceAccounts[0], m.configMaps[0], m.daemonSets[0]

	// Namespace and ServiceAccount.
	if lvl := ns.Labels["pod-security.kubernetes.io/enforce"]; lvl != "privileged" {
		p.add("namespace: pod-security.kubernetes.io/enforce is %q: hostNetwork and NET_ADMIN need \"privileged\"", lvl)
	}
	for _, o := range []metav1.ObjectMeta{sa.ObjectMeta, cm.ObjectMeta, ds.ObjectMeta} {
		if o.Namespace != ns.Name {
			p.add("%s: namespace %q, want %q", o.Name, o.Namespace, ns.Name)
		}
	}
	if !isFalse(sa.AutomountServiceAccountToken) {
		p.add("serviceaccount: automountServiceAccountToken must be false")
	}

	// The DaemonSet and its pod.
	spec := &ds.Spec.Template.Spec
	if !spec.HostNetwork {
		p.add("daemonset: hostNetwork must be true (VIPs on the node's loopback, sessions from the node's address)")
	}
	if spec.HostPID || spec.HostIPC {
		p.add("daemonset: hostPID and hostIPC must be false")
	}
	if spec.ServiceAccountName != sa.Name {
		p.add("daemonset: serviceAccountName %q, want %q", spec.ServiceAccountName, sa.Name)
	}
	if !isFalse(spec.AutomountServiceAccountToken) {
		p.add("daemonset: automountServiceAccountToken must be false")
	}
	if sc := spec.SecurityContext; sc == nil || sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		p.add("daemonset: the pod's seccompProfile must be RuntimeDefault")
	}
	if sel := ds.Spec.Selector; sel == nil || len(sel.MatchLabels) == 0 {
		p.add("daemonset: no selector matchLabels")
	} else {
		for k, v := range sel.MatchLabels {
			if ds.Spec.Template.Labels[k] != v {
				p.add("daemonset: selector %s=%s does not match the pod template's labels", k, v)
			}
		}
	}
	us := ds.Spec.UpdateStrategy
	switch {
	case us.Type != appsv1.RollingUpdateDaemonSetStrategyType || us.RollingUpdate == nil:
		p.add("daemonset: updateStrategy must be RollingUpdate with rollingUpdate set")
	default:
		if mu := us.RollingUpdate.MaxUnavailable; mu == nil || mu.String() != "1" {
			p.add("daemonset: rollingUpdate.maxUnavailable must be 1 (one node drained at a time), is %v", mu)
		}
		if ms := us.RollingUpdate.MaxSurge; ms != nil && ms.String() != "0" {
			p.add("daemonset: rollingUpdate.maxSurge must be 0 (two pods cannot share the node's ports), is %v", ms)
		}
	}

	// Images: pinned, and the same anycastd binary checks and runs.
	all := slices.Concat(spec.InitContainers, spec.Containers)
	for _, c := range all {
		if !pinnedImage(c.Image) {
			p.add("container %s: image %q must name a tag other than latest, or a digest", c.Name, c.Image)
		}
		if c.ImagePullPolicy != corev1.PullIfNotPresent {
			p.add("container %s: imagePullPolicy %q, want IfNotPresent", c.Name, c.ImagePullPolicy)
		}
	}
	daemon := findContainer(spec.Containers, daemonContainer)
	if daemon == nil || len(spec.Containers) != 1 {
		p.add("daemonset: want exactly one container, %q", daemonContainer)
		return p
	}
	checker := findContainer(spec.InitContainers, "check-config")
	if checker == nil {
		p.add("daemonset: no init container check-config")
	} else if checker.Image != daemon.Image {
		p.add("init container check-config: image %q, want anycastd's %q", checker.Image, daemon.Image)
	}

	// Security contexts: only anycastd has capabilities, and only two.
	for _, c := range all {
		want := []corev1.Capability(nil)
		if c.Name == daemonContainer {
			want = []corev1.Capability{"NET_ADMIN", "NET_BIND_SERVICE"}
		}
		p.securityContext(c, want)
	}

	// The configuration: rendered as the init container does, for two
	// nodes, then parsed by anycastd's config package.
	cfgs := p.renderedConfigs(spec, cm, daemon)
	if len(cfgs) != len(nodeIPs) {
		return p
	}
	for i, cfg := range cfgs {
		if got := cfg.BGP.RouterID.String(); got != nodeIPs[i] {
			p.add("config for node %s: router_id %s, want the node's IP (unique per node)", nodeIPs[i], got)
		}
	}
	cfg := cfgs[0]

	// SIGTERM: the drain, the flush and a margin fit in the grace period.
	need := cfg.Node.DrainTime
	for _, v := range cfg.VIPs {
		need = max(need, v.DrainTime)
	}
	need += stopAllowance
	if cfg.BGP.GracefulRestart {
		need += heldFlushTimeout
	}
	if g := spec.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second < need {
		p.add("daemonset: terminationGracePeriodSeconds %v must be at least %v (the longest drain_time + %v to stop, + %v with graceful_restart)",
			deref(g), need, stopAllowance, heldFlushTimeout)
	}
	// Ready means a session is up; a rollout moves on once the new pod
	// could also have announced again: its checks risen, the startup
	// delay over.
	var rise time.Duration
	for _, c := range cfg.Checks {
		rise = max(rise, time.Duration(c.Rise)*c.Interval)
	}
	rise += cfg.Node.StartupDelay
	if got := time.Duration(ds.Spec.MinReadySeconds) * time.Second; got < rise {
		p.add("daemonset: minReadySeconds %v is shorter than the slowest check's rise × interval + startup_delay (%v)", got, rise)
	}

	p.stateAndSocket(spec, daemon, cfg)
	p.probeAndPorts(daemon, cfg, nodeIPs[0])
	return p
}

// securityContext checks one container's: capabilities drop exactly ALL
// and add exactly want, a read-only root file system, no privilege
// escalation, not privileged; containers without capabilities run as
// non-root.
func (p *problemList) securityContext(c corev1.Container, want []corev1.Capability) {
	sc := c.SecurityContext
	if sc == nil {
		p.add("container %s: no securityContext", c.Name)
		return
	}
	var drop, add []corev1.Capability
	if sc.Capabilities != nil {
		drop, add = slices.Clone(sc.Capabilities.Drop), slices.Clone(sc.Capabilities.Add)
	}
	slices.Sort(add)
	if !slices.Equal(drop, []corev1.Capability{"ALL"}) {
		p.add("container %s: capabilities.drop %v, want [ALL]", c.Name, drop)
	}
	if !slices.Equal(add, want) {
		p.add("container %s: capabilities.add %v, want %v", c.Name, add, want)
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		p.add("container %s: readOnlyRootFilesystem must be true", c.Name)
	}
	if !isFalse(sc.AllowPrivilegeEscalation) {
		p.add("container %s: allowPrivilegeEscalation must be false", c.Name)
	}
	if sc.Privileged != nil && *sc.Privileged {
		p.add("container %s: must not be privileged", c.Name)
	}
	if len(want) == 0 && (sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot) {
		p.add("container %s: needs no capability, so runAsNonRoot must be true", c.Name)
	}
}

// sedLine is the init container's rendering: each placeholder in the
// template file becomes $NODE_IP in the output file.
var sedLine = regexp.MustCompile(`(?m)^\s*sed "s/(@[A-Z_]+@)/\$NODE_IP/g" (\S+) >(\S+)$`)

// renderedConfigs renders the ConfigMap's template as the init container
// "config" does, once per nodeIPs, and parses each result; it checks the
// chain in between: the ConfigMap volume, the node IP from the downward
// API, the output file on the volume anycastd reads its -config from.
func (p *problemList) renderedConfigs(spec *corev1.PodSpec, cm *corev1.ConfigMap, daemon *corev1.Container) []*config.Config {
	render := findContainer(spec.InitContainers, "config")
	if render == nil {
		p.add("daemonset: no init container config")
		return nil
	}
	if len(spec.InitContainers) == 0 || spec.InitContainers[0].Name != "config" {
		p.add("daemonset: the init container config must run first")
	}
	var nodeIP *corev1.EnvVar
	for i := range render.Env {
		if render.Env[i].Name == "NODE_IP" {
			nodeIP = &render.Env[i]
		}
	}
	if nodeIP == nil || nodeIP.ValueFrom == nil || nodeIP.ValueFrom.FieldRef == nil || nodeIP.ValueFrom.FieldRef.FieldPath != "status.hostIP" {
		p.add("init container config: NODE_IP must come from fieldRef status.hostIP (the IP the kubelet probes a hostNetwork pod at)")
	}
	sm := sedLine.FindStringSubmatch(strings.Join(slices.Concat(render.Command, render.Args), "\n"))
	if sm == nil {
		p.add("init container config: no line %s", sedLine)
		return nil
	}
	placeholder, in, out := sm[1], sm[2], sm[3]

	// The template: a key of the ConfigMap, through a volume.
	tmplVol, tmplKey := volumeFile(spec, render, in)
	if tmplVol == nil || tmplVol.ConfigMap == nil || tmplVol.ConfigMap.Name != cm.Name {
		p.add("init container config: %s is not on a volume of ConfigMap %q", in, cm.Name)
		return nil
	}
	for _, it := range tmplVol.ConfigMap.Items {
		if it.Path == tmplKey {
			tmplKey = it.Key
		}
	}
	tmpl, ok := cm.Data[tmplKey]
	if !ok {
		p.add("configmap: no key %q (read by the init container config)", tmplKey)
		return nil
	}
	if !strings.Contains(tmpl, placeholder) {
		p.add("configmap: %s has no %s to render", tmplKey, placeholder)
	}
	// The output: on a volume that anycastd mounts, read-only, as -config.
	outVol, outRel := volumeFile(spec, render, out)
	cfgVol, cfgRel := volumeFile(spec, daemon, flagValue(daemon.Args, "-config"))
	if outVol == nil || outVol.EmptyDir == nil || cfgVol == nil || cfgVol.Name != outVol.Name || cfgRel != outRel {
		p.add("container %s: -config %q is not the file the init container config writes (%s)", daemon.Name, flagValue(daemon.Args, "-config"), out)
	}
	for _, vm := range daemon.VolumeMounts {
		if cfgVol != nil && vm.Name == cfgVol.Name && !vm.ReadOnly {
			p.add("container %s: the configuration volume must be mounted readOnly", daemon.Name)
		}
	}

	var cfgs []*config.Config
	for _, ip := range nodeIPs {
		cfg, err := config.Parse([]byte(strings.ReplaceAll(tmpl, placeholder, ip)))
		if err != nil {
			p.add("configmap: %s rendered for node %s does not load: %v", tmplKey, ip, err)
			return nil
		}
		cfgs = append(cfgs, cfg)
	}
	return cfgs
}

// stateAndSocket checks that what anycastd writes is on writable volumes
// (the root file system is read-only) and that the state directory is the
// node's own, so that the address journal outlives the pod.
func (p *problemList) stateAndSocket(spec *corev1.PodSpec, daemon *corev1.Container, cfg *config.Config) {
	dir := cfg.Interface.StateDir
	vol, rel := volumeFile(spec, daemon, dir)
	switch {
	case vol == nil || vol.HostPath == nil:
		p.add("container %s: state_dir %s is not on a hostPath volume (the address journal would not outlive the pod)", daemon.Name, dir)
	case rel != "." || vol.HostPath.Path != dir:
		p.add("volume %s: hostPath %s mounted for state_dir %s: want the node's own %s at the same path", vol.Name, vol.HostPath.Path, dir, dir)
	case vol.HostPath.Type == nil || *vol.HostPath.Type != corev1.HostPathDirectoryOrCreate:
		p.add("volume %s: hostPath type must be DirectoryOrCreate", vol.Name)
	}
	writable := func(file string) bool {
		v, _ := volumeFile(spec, daemon, file)
		if v == nil {
			return false
		}
		for _, vm := range daemon.VolumeMounts {
			if vm.Name == v.Name && vm.ReadOnly {
				return false
			}
		}
		return true
	}
	if !writable(path.Join(dir, "journal")) {
		p.add("container %s: state_dir %s is not writable", daemon.Name, dir)
	}
	if network, addr := cfg.API.Network(); network == "unix" && !writable(addr) {
		p.add("container %s: the API socket %s is not on a writable volume", daemon.Name, addr)
	}
}

// probeAndPorts checks the readiness probe (grpc.health.v1 on [api]
// tcp_listen, bound to the node's IP: the kubelet probes a hostNetwork pod
// at the pod IP, which is the node's) and the ports declared.
func (p *problemList) probeAndPorts(daemon *corev1.Container, cfg *config.Config, nodeIP string) {
	host, port, err := net.SplitHostPort(cfg.API.TCPListen)
	if err != nil {
		p.add("config: [api] tcp_listen %q: the readiness probe needs a TCP listener: %v", cfg.API.TCPListen, err)
		return
	}
	if host != nodeIP {
		p.add("config: [api] tcp_listen host %q, want the node's IP %s (where the kubelet probes; not the VIPs)", host, nodeIP)
	}
	if cfg.API.TLSCertFile != "" {
		p.add("config: [api] tcp_listen has TLS: the kubelet's grpc probe speaks plain TCP")
	}
	p.probe(daemon, "readiness", daemon.ReadinessProbe, port, []string{readyService})
	if lp := daemon.LivenessProbe; lp != nil {
		p.probe(daemon, "liveness", lp, port, liveServices)
		if w := time.Duration(orDefault(lp.FailureThreshold, 3)*orDefault(lp.PeriodSeconds, 10)) * time.Second; w < livenessWindow {
			p.add("container %s: liveness probe window %v (failureThreshold × periodSeconds) is under %v", daemon.Name, w, livenessWindow)
		}
	}
	p.port(daemon, apiPortName, cfg.API.TCPListen)
	p.port(daemon, metricsPortName, cfg.Metrics.Listen)
	bgp := "" // listen_port 0: no listener
	if cfg.BGP.ListenPort > 0 {
		bgp = ":" + strconv.Itoa(cfg.BGP.ListenPort)
	}
	p.port(daemon, bgpPortName, bgp)
}

// probe checks that probe is a grpc probe of [api] tcp_listen's port for
// one of services.
func (p *problemList) probe(c *corev1.Container, kind string, pr *corev1.Probe, port string, services []string) {
	if pr == nil || pr.GRPC == nil {
		p.add("container %s: no grpc %sProbe", c.Name, kind)
		return
	}
	if strconv.Itoa(int(pr.GRPC.Port)) != port {
		p.add("container %s: %s probe port %d, want [api] tcp_listen's %s", c.Name, kind, pr.GRPC.Port, port)
	}
	svc := "" // unset: the server as a whole
	if pr.GRPC.Service != nil {
		svc = *pr.GRPC.Service
	}
	if !slices.Contains(services, svc) {
		p.add("container %s: %s probe service %q, want one of %q", c.Name, kind, svc, services)
	}
}

// port checks that the container declares the port named name, TCP, as
// the port of listen (host:port; "" when the listener is off).
func (p *problemList) port(c *corev1.Container, name, listen string) {
	var cp *corev1.ContainerPort
	for i := range c.Ports {
		if c.Ports[i].Name == name {
			cp = &c.Ports[i]
		}
	}
	if listen == "" {
		if cp != nil {
			p.add("container %s: port %s declared for a listener that is off", c.Name, name)
		}
		return
	}
	_, want, _ := net.SplitHostPort(listen)
	if cp == nil || strconv.Itoa(int(cp.ContainerPort)) != want || (cp.Protocol != "" && cp.Protocol != corev1.ProtocolTCP) {
		p.add("container %s: want port %s, TCP %s (the configuration's %s)", c.Name, name, want, listen)
	}
}

// volumeFile returns the pod volume that holds file in container c, and
// file's path relative to the mount; nil if no mount holds it.
func volumeFile(spec *corev1.PodSpec, c *corev1.Container, file string) (*corev1.Volume, string) {
	var best *corev1.VolumeMount
	for i, vm := range c.VolumeMounts {
		if rel, err := filepath.Rel(vm.MountPath, file); err == nil && !strings.HasPrefix(rel, "..") &&
			(best == nil || len(vm.MountPath) > len(best.MountPath)) {
			best = &c.VolumeMounts[i]
		}
	}
	if best == nil || !path.IsAbs(file) {
		return nil, ""
	}
	rel, _ := filepath.Rel(best.MountPath, file)
	for i := range spec.Volumes {
		if spec.Volumes[i].Name == best.Name {
			return &spec.Volumes[i], rel
		}
	}
	return nil, ""
}

// pinnedImage reports whether image names a tag other than latest, or a
// digest.
func pinnedImage(image string) bool {
	if strings.Contains(image, "@sha256:") {
		return true
	}
	name := image[strings.LastIndex(image, "/")+1:]
	_, tag, ok := strings.Cut(name, ":")
	return ok && tag != "" && tag != "latest"
}

// flagValue returns the value after flag in args, "" if absent.
func flagValue(args []string, flag string) string {
	for i, a := range args {
		if a == flag && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

func findContainer(cs []corev1.Container, name string) *corev1.Container {
	for i := range cs {
		if cs[i].Name == name {
			return &cs[i]
		}
	}
	return nil
}

// orDefault is x, or def when x is 0 (unset: Kubernetes' default).
func orDefault(x, def int32) int32 {
	if x == 0 {
		return def
	}
	return x
}

func isFalse(b *bool) bool { return b != nil && !*b }

func deref[T any](x *T) any {
	if x == nil {
		return "unset"
	}
	return *x
}

// problemList collects invariant violations.
type problemList []string

func (p *problemList) add(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }
