import * as http from 'node:http';
import { AddressInfo } from 'node:net';

/** The listener the emulated Elastic Load Balancing API describes. */
export interface EmulatedListener {
  readonly arn: string;
  readonly loadBalancerArn: string;
  readonly port: number;
  readonly protocol: string;
}

/**
 * A stub of the two AWS API actions the golden-request hook calls to find the load balancer:
 * Elastic Load Balancing's DescribeListeners and EC2's DescribeNetworkInterfaces (both AWS's
 * query protocol, XML answers), on 127.0.0.1. The load balancer's network interfaces all have the
 * address 127.0.0.1, so the hook's requests reach a real server there. It records every call.
 */
export class EmulatedLoadBalancer {
  readonly calls: Array<{ action: string; params: URLSearchParams }> = [];
  listener?: EmulatedListener;
  private server?: http.Server;
  url = '';

  async start(): Promise<this> {
    this.server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        const params = new URLSearchParams(body);
        const action = params.get('Action')!;
        this.calls.push({ action, params });
        const [status, xml] = this.answer(action, params);
        res.writeHead(status, { 'content-type': 'text/xml' }).end(xml);
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((r) => this.server?.close(r));
  }

  /** What a Lambda needs to reach this stub instead of AWS. */
  env(): Record<string, string> {
    return { AWS_ENDPOINT_URL_EC2: this.url, AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2: this.url };
  }

  private answer(action: string, params: URLSearchParams): [number, string] {
    const elb = 'xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"';
    const l = this.listener;
    if (action === 'DescribeListeners') {
      if (!l || params.get('ListenerArns.member.1') !== l.arn) {
        return [400, `<ErrorResponse ${elb}><Error><Type>Sender</Type><Code>ListenerNotFound</Code><Message>One or more listeners not found</Message></Error><RequestId>r</RequestId></ErrorResponse>`];
      }
      return [200, `<DescribeListenersResponse ${elb}><DescribeListenersResult><Listeners><member><ListenerArn>${l.arn}</ListenerArn>` +
        `<LoadBalancerArn>${l.loadBalancerArn}</LoadBalancerArn><Port>${l.port}</Port><Protocol>${l.protocol}</Protocol></member></Listeners>` +
        '</DescribeListenersResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></DescribeListenersResponse>'];
    }
    if (action === 'DescribeNetworkInterfaces') {
      const wanted = params.get('Filter.1.Name') === 'description' ? params.get('Filter.1.Value.1') : undefined;
      const description = l && `ELB ${l.loadBalancerArn.split(':loadbalancer/')[1]}`;
      const items = wanted && wanted === description
        ? ['eni-0a', 'eni-0b'].map((id) => `<item><networkInterfaceId>${id}</networkInterfaceId><description>${description}</description><privateIpAddress>127.0.0.1</privateIpAddress></item>`).join('')
        : '';
      return [200, `<DescribeNetworkInterfacesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r</requestId><networkInterfaceSet>${items}</networkInterfaceSet></DescribeNetworkInterfacesResponse>`];
    }
    return [400, `<ErrorResponse ${elb}><Error><Type>Sender</Type><Code>InvalidAction</Code><Message>no ${action} here</Message></Error></ErrorResponse>`];
  }
}
