package api

import (
	_ "embed"
	"net/http"

	"github.com/julienschmidt/httprouter"
)

// OpenAPI is the OpenAPI 3 document of the API, served at
// GET /api/v1/openapi.yaml. A test holds it to the router's routes, both
// ways.
//
//go:embed openapi.yaml
var OpenAPI []byte

func (a *API) openAPI(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	w.Header().Set("Content-Type", "application/yaml")
	_, err := w.Write(OpenAPI)
	return err
}
