// Command vcsim-hvguard runs VMware's vSphere API simulator (govmomi's simulator package) for hvguard's
// tests and benchmarks: an ESX or VPX model of a chosen size on a loopback address, with enforced
// credentials and TLS from a test CA. It writes the service URL (without the password) to -urlfile once
// it accepts connections, and exits cleanly on SIGTERM or SIGINT.
//
// Built from Debian's golang-github-vmware-govmomi-dev without a module proxy:
//
//	GOPATH=/usr/share/gocode GO111MODULE=off GOPROXY=off go build -o vcsim-hvguard .
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"log"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/vmware/govmomi/simulator"

	// Registered endpoints (VPX only): the vAPI REST simulator (content libraries) and PBM.
	_ "github.com/vmware/govmomi/pbm/simulator"
	_ "github.com/vmware/govmomi/vapi/simulator"
)

func main() {
	modelName := flag.String("model", "esx", "inventory model: esx (a standalone ESXi) or vpx (a vCenter)")
	dc := flag.Int("dc", -1, "datacenters (vpx; -1: the model's default)")
	cluster := flag.Int("cluster", -1, "clusters per datacenter (vpx)")
	host := flag.Int("host", -1, "hosts per cluster (vpx)")
	standalone := flag.Int("standalone-host", -1, "standalone hosts per datacenter (vpx)")
	pool := flag.Int("pool", -1, "resource pools per cluster (vpx)")
	vm := flag.Int("vm", -1, "virtual machines per resource pool")
	ds := flag.Int("ds", -1, "datastores")
	pg := flag.Int("pg", -1, "distributed portgroups per datacenter (vpx)")
	folder := flag.Int("folder", -1, "folders per datacenter (vpx)")
	listen := flag.String("l", "127.0.0.2:0", "listen address, [user:password@]ip:port (credentials enforced)")
	urlFile := flag.String("urlfile", "", "write the service URL (no password) here once serving")
	certFile := flag.String("cert", "", "TLS certificate (PEM); with -key, serve HTTPS")
	keyFile := flag.String("key", "", "TLS private key (PEM)")
	api := flag.String("api", "", "advertised API version, e.g. 7.0.1.0 (default: the model's 6.5)")
	delay := flag.Int("delay", 0, "milliseconds added to every SOAP call")
	flag.Parse()

	var model *simulator.Model
	switch *modelName {
	case "esx":
		model = simulator.ESX()
	case "vpx":
		model = simulator.VPX()
	default:
		log.Fatalf("-model %q: use esx or vpx", *modelName)
	}
	sizes := []struct {
		value  int
		target *int
	}{
		{*dc, &model.Datacenter}, {*cluster, &model.Cluster}, {*host, &model.ClusterHost},
		{*standalone, &model.Host}, {*pool, &model.Pool}, {*vm, &model.Machine},
		{*ds, &model.Datastore}, {*pg, &model.Portgroup}, {*folder, &model.Folder},
	}
	for _, s := range sizes {
		if s.value >= 0 {
			*s.target = s.value
		}
	}
	if *api != "" {
		// pyVmomi negotiates its namespace from this (vimServiceVersions.xml): 6.7+ values need it.
		model.ServiceContent.About.ApiVersion = *api
	}
	model.DelayConfig.Delay = *delay

	if err := model.Create(); err != nil {
		log.Fatalf("create model: %v", err)
	}
	model.Service.RegisterEndpoints = true

	u, err := url.Parse("https://" + *listen)
	if err != nil || u.Host == "" {
		log.Fatalf("-l %q: not [user:password@]ip:port", *listen)
	}
	model.Service.Listen = &url.URL{Host: u.Host, User: u.User}
	if (*certFile == "") != (*keyFile == "") {
		log.Fatal("-cert and -key go together")
	}
	if *certFile != "" {
		cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			log.Fatalf("TLS key pair: %v", err)
		}
		model.Service.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}

	server := model.Service.NewServer()
	served := *server.URL
	served.User = nil
	if *urlFile != "" {
		if err := writeAtomically(*urlFile, served.String()+"\n"); err != nil {
			log.Fatalf("-urlfile: %v", err)
		}
	}
	fmt.Println(served.String())

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
	server.Close()
	model.Remove()
}

// writeAtomically writes text to path through a temporary file and a rename, so a reader polling for
// path never sees half a URL.
func writeAtomically(path, text string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".vcsim-url-*")
	if err != nil {
		return err
	}
	if _, err := tmp.WriteString(text); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), strings.TrimSpace(path))
}
