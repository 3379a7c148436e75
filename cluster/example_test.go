package cluster_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"

	"github.com/mesher-dev/mesher/cluster"
)

func Example() {
	ctx := context.Background()
	c, err := cluster.Start(ctx, cluster.Config{
		NodeName: "node-1",
		Cookie:   "a-long-random-shared-secret",
		BindAddr: "127.0.0.1:0", // any free port
		HTTPAddr: "127.0.0.1:8080",
		Logger:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Shutdown()

	err = c.SetLocalInstances([]cluster.Instance{{Processor: "enrich", ID: "1", State: "running"}})
	if err != nil {
		log.Fatal(err)
	}
	for _, in := range c.Registry()["enrich"] {
		fmt.Println(in.Processor, in.ID, "on", in.Node, in.Kind)
	}
	fmt.Println(c.Self().Name, c.Self().State)
	// Output:
	// enrich 1 on node-1 local
	// node-1 alive
}
