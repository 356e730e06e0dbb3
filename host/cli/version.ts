// The package version, bundled from package.json (esbuild inlines the JSON).
import pkg from "../../package.json";

export const version: string = pkg.version;
