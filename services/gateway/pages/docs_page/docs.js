// The API docs page: once a token is given (session.js), read the OpenAPI document with it and let Swagger UI
// show it, authorized with the same token for every call "Try it out" makes. Nothing is loaded from anywhere but the gateway.
"use strict";

Assay.onToken(async () => {
  Assay.say("reading the API document…");
  let spec;
  try {
    spec = await Assay.api("/schema/openapi.json");
  } catch (error) {
    Assay.say(error.message);
    return;
  }
  Assay.say("");
  const ui = SwaggerUIBundle({
    spec,
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,  // the default sends the document to an outside validator
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
  // Authorized with the page's token, as if given under "Authorize": every call that needs it carries it.
  const token = Assay.headers().Authorization.replace(/^Bearer /, "");
  ui.authActions.authorize({ bearer: { name: "bearer", schema: { type: "http", scheme: "bearer" }, value: token } });
});
