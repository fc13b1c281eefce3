// ESLint flat config that Assay's static analyzer passes with --config to lint a generated app's frontend.
// Browser scripts: the rules catch code that runs text as code, loose equality and names that do not exist.
import globals from "globals";

export default [
  {
    files: ["**/*.js", "**/*.mjs", "**/*.cjs", "**/*.jsx"],
    languageOptions: {
      ecmaVersion: "latest",
      // generated frontends mix classic scripts and ES modules in .js files; module parsing reads both
      // (only sloppy-mode oddities such as `with` fail), while script parsing rejects every import/export
      sourceType: "module",
      parserOptions: { ecmaFeatures: { jsx: true } },
      globals: { ...globals.browser },
    },
    linterOptions: { reportUnusedDisableDirectives: "off" },
    rules: {
      "no-eval": "error",
      "no-implied-eval": "error",
      "no-new-func": "error",
      "no-script-url": "error",
      "no-undef": "error",
      "no-unused-vars": ["warn", { args: "none" }],
      "eqeqeq": ["warn", "always"],
      "no-alert": "warn",
      "no-unreachable": "error",
      "no-dupe-keys": "error",
      "no-redeclare": "error",
    },
  },
  {
    files: ["**/*.cjs"],
    languageOptions: { sourceType: "commonjs", globals: { ...globals.node } },
  },
];
