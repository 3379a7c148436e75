package cluster

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	valid := func() Config {
		return Config{NodeName: "node-1", Cookie: testCookie, HTTPAddr: "10.0.0.1:8080"}
	}
	tests := []struct {
		name    string
		edit    func(c *Config)
		wantErr string
	}{
		{"defaults", func(c *Config) {}, ""},
		{"seeds and port 0", func(c *Config) { c.BindAddr = "127.0.0.2:0"; c.Seeds = []string{"10.0.0.2:7946", "seed.example:7946"} }, ""},
		{"no name", func(c *Config) { c.NodeName = "" }, "node name"},
		{"long name", func(c *Config) { c.NodeName = strings.Repeat("n", MaxNodeNameLen+1) }, "node name"},
		{"name with space", func(c *Config) { c.NodeName = "node 1" }, "node name"},
		{"short cookie", func(c *Config) { c.Cookie = "short" }, "cookie"},
		{"bind host not an IP", func(c *Config) { c.BindAddr = "localhost:7946" }, "bind address"},
		{"bind without port", func(c *Config) { c.BindAddr = "127.0.0.1" }, "bind address"},
		{"bad port", func(c *Config) { c.BindAddr = "127.0.0.1:70000" }, "bind address"},
		{"seed without port", func(c *Config) { c.Seeds = []string{"10.0.0.2"} }, "seed"},
		{"no http address", func(c *Config) { c.HTTPAddr = "" }, "http address"},
		{"http address without host", func(c *Config) { c.HTTPAddr = ":8080" }, "http address"},
		{"unspecified http address", func(c *Config) { c.HTTPAddr = "0.0.0.0:8080" }, "http address"},
		{"long http address", func(c *Config) { c.HTTPAddr = strings.Repeat("h", MaxHTTPAddrLen) + ":1" }, "http address"},
		{"negative interval", func(c *Config) { c.RejoinInterval = -time.Second }, "rejoin interval"},
		{"probe timeout too long", func(c *Config) { c.ProbeTimeout = time.Second }, "probe timeout"},
		{"negative suspicion", func(c *Config) { c.SuspicionMult = -1 }, "suspicion"},
		{"transport ignores bind address", func(c *Config) { c.BindAddr = "not an address"; c.Transport = &cutTransport{} }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid()
			tt.edit(&cfg)
			err := cfg.withDefaults().validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("got error %v, want none", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("got error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	c := Config{}.withDefaults()
	got := []any{c.BindAddr, c.ProbeInterval, c.ProbeTimeout, c.SuspicionMult, c.GossipInterval, c.PushPullInterval, c.RejoinInterval, c.LoadInterval}
	want := []any{DefaultBindAddr, DefaultProbeInterval, DefaultProbeTimeout, DefaultSuspicionMult, DefaultGossipInterval, DefaultPushPullInterval, DefaultRejoinInterval, DefaultLoadInterval}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("default %d: got %v, want %v", i, got[i], want[i])
		}
	}
	if c.Logger == nil || c.Now == nil {
		t.Error("no default logger or clock")
	}
}

func TestStartRejectsBadConfig(t *testing.T) {
	_, err := Start(t.Context(), Config{NodeName: "x"})
	if err == nil || !strings.HasPrefix(err.Error(), "cluster config: cookie") {
		t.Errorf("got %v, want a cookie error", err)
	}
}
