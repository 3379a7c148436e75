package cluster

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

func TestDescribe(t *testing.T) {
	nodes := startCluster(t, 2, nil)
	a, b := nodes[0], nodes[1]
	if err := b.SetLocalInstances([]Instance{{Processor: "enrich", ID: "1", Version: sha, State: "running"}}); err != nil {
		t.Fatal(err)
	}
	if err := b.SetInterests([]string{"project-1"}); err != nil {
		t.Fatal(err)
	}
	b.SetLoad(Load{EventsPerSec: 10, QueueDepth: 3, Busy: 0.5, Instances: 1})
	waitFor(t, 15*time.Second, "node-2's state on node-1", func() string {
		d := a.Describe()
		m, _ := a.Member("node-2")
		if len(d.Registry["enrich"]) != 1 || len(d.Interests["node-2"]) != 1 || m.Load.QueueDepth != 3 {
			return fmt.Sprintf("registry %v, interests %v, load %+v", d.Registry, d.Interests, m.Load)
		}
		return ""
	})
	data, err := json.Marshal(a.Describe())
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Self struct {
			Name     string `json:"name"`
			State    string `json:"state"`
			HTTPAddr string `json:"http_addr"`
		} `json:"self"`
		Members []struct {
			Name  string `json:"name"`
			State string `json:"state"`
			Epoch uint64 `json:"epoch"`
			Load  Load   `json:"load"`
		} `json:"members"`
		Registry  map[string][]map[string]any `json:"registry"`
		Interests map[string][]string         `json:"interests"`
	}
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatalf("%v in %s", err, data)
	}
	if got.Self.Name != "node-1" || got.Self.State != "alive" || got.Self.HTTPAddr != "127.0.0.1:18080" {
		t.Errorf("self %+v, want node-1 alive at 127.0.0.1:18080", got.Self)
	}
	if len(got.Members) != 2 || got.Members[1].Name != "node-2" || got.Members[1].Epoch != b.Self().Epoch ||
		got.Members[1].Load.QueueDepth != 3 || got.Members[1].State != "alive" && got.Members[1].State != "suspect" {
		t.Errorf("members %+v, want node-1 and node-2 (up, epoch %d, queue depth 3)", got.Members, b.Self().Epoch)
	}
	if inst := got.Registry["enrich"]; len(inst) != 1 || inst[0]["node"] != "node-2" || inst[0]["version"] != sha {
		t.Errorf("registry %v, want enrich on node-2", got.Registry)
	}
	if keys := got.Interests["node-2"]; len(keys) != 1 || keys[0] != "project-1" {
		t.Errorf("interests %v, want node-2: [project-1]", got.Interests)
	}
	t.Logf("%s", data)
}

func TestStateText(t *testing.T) {
	for _, s := range []State{StateAlive, StateSuspect, StateDead, StateLeft} {
		b, _ := s.MarshalText()
		var got State
		if err := got.UnmarshalText(b); err != nil || got != s {
			t.Errorf("%v: round trip gave %v, %v", s, got, err)
		}
	}
	var s State
	if err := s.UnmarshalText([]byte("zombie")); err == nil {
		t.Error("unknown state: got no error")
	}
}
