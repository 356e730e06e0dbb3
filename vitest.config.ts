// The test suite: unit and integration tests (test/) and the copyable examples (examples/).
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts", "examples/**/*.test.ts"],
  },
});
