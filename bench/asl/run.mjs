// Runs a definition with aws-local-stepfunctions ROUNDS times and prints the
// best in-process time, as scripts/bench-asl expects: {"ms": N, "ok": bool}.
import { readFileSync } from 'node:fs';
import { StateMachine } from 'aws-local-stepfunctions';

const [definitionPath, rounds = '3'] = process.argv.slice(2);
const definition = JSON.parse(readFileSync(definitionPath, 'utf8'));
const machine = new StateMachine(definition);
let best = Infinity;
let ok = true;
for (let i = 0; i < Number(rounds); i++) {
  const started = process.hrtime.bigint();
  try {
    await machine.run({}).result;
  } catch (e) {
    ok = false;
    console.error(e);
  }
  best = Math.min(best, Number(process.hrtime.bigint() - started) / 1e6);
}
console.log(JSON.stringify({ ms: best, ok }));
