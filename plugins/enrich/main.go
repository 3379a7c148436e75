// Command enrich is a processor that adds configured tags to events and
// fills in their environment and release.
//
// An event without a non-empty top-level "environment" gets one from the
// first of the environment_from paths that holds a non-empty string or
// number in the event, or else from the environment setting; "release" is
// filled in the same way. An event that has them keeps them.
//
// The configured tags are then added, and the event's environment and
// release, whether it came with them or they were filled in, are mirrored
// into tags.environment and tags.release so that they can be filtered on.
// A tag the event already has with a non-empty value is kept, unless
// overwrite is set.
//
// Configuration:
//
//	tags              object       tag -> value to add (default {}); values
//	                               must be strings, numbers or booleans
//	overwrite         bool         replace tags the event already has (default false)
//	environment_from  string_list  dot paths to take the environment from
//	                               (default contexts.app.environment,
//	                               extra.environment, tags.environment)
//	release_from      string_list  dot paths to take the release from
//	                               (default contexts.app.version,
//	                               extra.release, tags.release)
//	environment       string       environment when no path has one (default "")
//	release           string       release when no path has one (default "")
//
// A tags setting that is not an object of such values, or an event whose
// tags are not an object (such as Sentry's list of [key, value] pairs),
// makes the event fail with an error rather than lose tags.
package main

import (
	"bytes"
	"fmt"

	"github.com/mesher-dev/mesher/abi/guest"
)

func init() { guest.Handle(process) }

func main() {}

// Defaults, as declared in manifest.json; tags defaults to {}.
var (
	defaultEnvironmentFrom = []string{"contexts.app.environment", "extra.environment", "tags.environment"}
	defaultReleaseFrom     = []string{"contexts.app.version", "extra.release", "tags.release"}
)

const (
	defaultOverwrite   = false
	defaultEnvironment = ""
	defaultRelease     = ""
)

func process(e *guest.Event) error {
	c, err := current()
	if err != nil {
		return err
	}
	if tags := e.Get("tags"); tags.Kind() != guest.Object && tags.Kind() != guest.Null {
		return fmt.Errorf("event tags: want an object, got %s", tags.Kind())
	}
	env := c.fill(e, "environment", c.environmentFrom, c.environment)
	release := c.fill(e, "release", c.releaseFrom, c.release)
	for _, t := range c.tags {
		c.setTag(e, t[0], t[1])
	}
	c.setTag(e, "environment", env)
	c.setTag(e, "release", release)
	return nil
}

// config is the state derived from the configuration.
type config struct {
	tags                         [][2]string // key, value
	overwrite                    bool
	environmentFrom, releaseFrom []string
	environment, release         string
}

// fill returns the top-level field of e named key, first setting it from
// the first path with a value, or fallback, if it is empty.
func (c *config) fill(e *guest.Event, key string, paths []string, fallback string) string {
	if v := e.GetString(key); v != "" {
		return v
	}
	v := fallback
	for _, p := range paths {
		if s := e.GetString(p); s != "" {
			v = s
			break
		}
	}
	if v != "" {
		_ = e.SetString(key, v) // cannot fail: the root is an object
	}
	return v
}

// setTag sets a tag to a non-empty value, unless the event has the tag
// with another non-empty value and overwrite is off.
func (c *config) setTag(e *guest.Event, key, value string) {
	if value == "" {
		return
	}
	if cur := e.Tag(key); cur == value || cur != "" && !c.overwrite {
		return
	}
	e.SetTag(key, value)
}

// cache keeps the config, or what is wrong with it, until the
// configuration changes.
var cache struct {
	raw    []byte
	loaded bool
	c      *config
	err    error
}

func current() (*config, error) {
	raw := guest.ConfigRaw()
	if !cache.loaded || !bytes.Equal(raw, cache.raw) {
		cache.raw = bytes.Clone(raw)
		cache.loaded = true
		cache.c, cache.err = load()
	}
	return cache.c, cache.err
}

func load() (*config, error) {
	c := &config{
		overwrite:       guest.ConfigBool("overwrite", defaultOverwrite),
		environmentFrom: guest.ConfigStrings("environment_from", defaultEnvironmentFrom),
		releaseFrom:     guest.ConfigStrings("release_from", defaultReleaseFrom),
		environment:     guest.ConfigString("environment", defaultEnvironment),
		release:         guest.ConfigString("release", defaultRelease),
	}
	switch tags := guest.Config("tags"); tags.Kind() {
	case guest.Null:
	case guest.Object:
		for _, m := range tags.Members() {
			switch m.Value.Kind() {
			case guest.String, guest.Number, guest.Bool:
				c.tags = append(c.tags, [2]string{m.Key, m.Value.String()})
			default:
				return nil, fmt.Errorf("config tags.%s: want a string, got %s", m.Key, m.Value.JSON())
			}
		}
	default:
		return nil, fmt.Errorf("config tags: want an object mapping tags to values, got %s", tags.JSON())
	}
	return c, nil
}
