// The baseline: a bare Fastify route that parses the same JSON body and answers.
import Fastify from 'fastify'

const app = Fastify({ logger: false })
app.post('/v1/requests', async (request, reply) => {
  const body = request.body
  return reply.status(201).send({ id: 'req_baseline', status: 'approved', action: body.action })
})
await app.listen({ host: '127.0.0.1', port: 0 })
console.log(`listening on http://127.0.0.1:${app.server.address().port}`)
process.once('SIGTERM', () => app.close().then(() => process.exit(0)))
