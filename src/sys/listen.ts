// Starts a net/tls server listening and reports the address it got (port 0 resolved).
import type { Server } from 'node:net';

export function listenOn(server: Server, host: string, port: number): Promise<{ host: string; port: number }> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const a = server.address() as { address: string; port: number };
      resolve({ host: a.address, port: a.port });
    });
  });
}
