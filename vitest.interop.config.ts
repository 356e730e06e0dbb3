// The interop suite (`npm run test:interop`): our captures checked by real peers (tshark,
// ...). Separate from `npm test` because the peers are system packages (CI installs them,
// .ci/run); a test whose peer is missing fails, it is never skipped.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/interop/**/*.interop.ts"],
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
